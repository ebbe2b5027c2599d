"""Headers item 7: a Content-Security-Policy (django-csp) that the pages satisfy. The policy allows only this site's
own scripts and styles plus inline ones carrying the request's nonce; every page is checked for inline code
without it (inline <script>/<style>, `style=` and `on...=` attributes, `javascript:` links), the API docs page too
(drf-spectacular's Swagger UI has an inline script and style). The browser tests of issue "The site as a product"
check the same in a real browser once they exist."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


class InlineCode(HTMLParser):
    """Collects what a strict policy would block: inline code and the nonces it carries."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inline_blocks: list[tuple[str, str | None]] = []  # (tag, nonce)
        self.script_sources: list[str] = []
        self.inline_attributes: list[str] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name == "style" or name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.inline_attributes.append(f"<{tag} {name}={value!r}>")
        if tag == "script" and attributes.get("src"):
            self.script_sources.append(attributes["src"])
        elif tag in ("script", "style"):
            self.inline_blocks.append((tag, attributes.get("nonce")))
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href", ""))


def assert_page_satisfies_policy(response) -> InlineCode:
    assert response.status_code == 200, response.status_code
    directives = policy(response)
    for name in ("script-src", "style-src"):
        assert "'self'" in directives[name]
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(directives[name]), directives[name]
    nonces = {value for value in directives["script-src"] if value.startswith("'nonce-")}
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert directives["default-src"] == ["'self'"] and directives["base-uri"] == ["'self'"]
    page = InlineCode()
    page.feed(response.content.decode())
    assert not page.inline_attributes, page.inline_attributes
    for source in page.script_sources + page.stylesheets:
        assert source.startswith("/") and not source.startswith("//"), source  # same origin
    if page.inline_blocks:
        assert len(nonces) == 1, directives["script-src"]
        nonce = nonces.pop()[len("'nonce-"): -1]
        assert f"'nonce-{nonce}'" in directives["style-src"]
        assert all(found == nonce for _, found in page.inline_blocks), page.inline_blocks
    return page


@pytest.fixture
def site(eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory()
    participant = RegistrationFactory(challenge=phase.challenge).user
    client = Client()
    client.force_login(participant)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/submissions/new/{phase.challenge.slug}/{phase.slug}/", {"file": csv_upload(GOOD), "comment": "x"}
        )
    submission = phase.submissions.get()
    return {"phase": phase, "participant": participant, "submission": submission}


def test_public_pages_satisfy_the_policy(site):
    phase = site["phase"]
    client = Client()
    for url in (
        "/",
        f"/challenges/{phase.challenge.slug}/",
        f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/",
        "/accounts/login/",
        "/accounts/signup/",
    ):
        assert_page_satisfies_policy(client.get(url))


def test_signed_in_pages_satisfy_the_policy(site):
    phase = site["phase"]
    client = Client()
    client.force_login(site["participant"])
    for url in (
        "/",
        f"/challenges/{phase.challenge.slug}/phases/{phase.slug}/",
        f"/submissions/{site['submission'].pk}/",
        f"/submissions/new/{phase.challenge.slug}/{phase.slug}/",
    ):
        assert_page_satisfies_policy(client.get(url))


def test_api_docs_inline_script_and_style_carry_the_nonce():
    first = Client().get("/api/docs/")
    page = assert_page_satisfies_policy(first)
    assert [tag for tag, _ in page.inline_blocks] == ["style", "script"]  # Swagger UI's configuration and layout
    assert page.inline_blocks[0][1]  # a nonce, checked against the header above
    assert any(source.endswith("swagger-ui-bundle.js") for source in page.script_sources)
    second = Client().get("/api/docs/")
    assert policy(first)["script-src"] != policy(second)["script-src"]  # a fresh nonce per response
    assert "SwaggerUIBundle(" in first.content.decode()


def test_json_api_and_pages_without_inline_code_also_get_the_policy():
    response = Client().get("/api/challenges/")
    assert response.status_code == 200 and policy(response)["default-src"] == ["'self'"]
