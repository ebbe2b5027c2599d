"""The design system's rules on the templates themselves: one base layout, no page with its own header, nothing inline
that a strict Content-Security-Policy would refuse, and the stats include point kept on the phase page."""

import re
from pathlib import Path

import pytest

PLATFORM = Path(__file__).resolve().parents[2] / "platform" / "spinebench"
TEMPLATES = sorted(path for path in PLATFORM.rglob("templates/**/*.html"))
# api/docs.html is drf-spectacular's Swagger UI page, extended only to put the request's CSP nonce on its inline
# script and style; it keeps that package's own layout.
PAGES = [
    path
    for path in TEMPLATES
    if path.name != "base.html"
    and "components" not in path.parts
    and not path.name.startswith("_")
    and path.relative_to(PLATFORM).as_posix() != "templates/api/docs.html"
    and not path.name.endswith("_email.html")
]  # a mail body Django renders as text, not a page


def test_templates_are_found():
    assert len(PAGES) >= 8 and any(path.name == "phase.html" for path in PAGES)


@pytest.mark.parametrize("path", PAGES, ids=lambda path: str(path.relative_to(PLATFORM)))
def test_every_page_extends_the_one_base_and_builds_no_header(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{% extends "base.html" %}'), path
    assert "<header" not in text and "<html" not in text and '<nav class="navbar' not in text


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: str(path.relative_to(PLATFORM)))
def test_nothing_inline_for_a_strict_csp(path):
    text = path.read_text(encoding="utf-8")
    # An inline script or style is allowed only with the request's nonce (the CSP lets exactly those run).
    assert not re.search(r"<script(?![^>]*\b(?:src|nonce)=)[^>]*>", text), "inline <script>"
    assert not re.search(r"<style(?![^>]*\bnonce=)[^>]*>", text) and not re.search(r"\sstyle=", text), "inline style"
    assert not re.search(r"\son[a-z]+=", text), "inline event handler"


def test_phase_page_keeps_the_statistics_include():
    text = (PLATFORM / "templates" / "leaderboards" / "phase.html").read_text(encoding="utf-8")
    assert '{% include "leaderboards/_statistics.html" %}' in text
    assert (PLATFORM / "templates" / "leaderboards" / "_statistics.html").is_file()


def test_components_render_what_pages_and_tests_read():
    from django.template.loader import render_to_string

    status = render_to_string("components/status.html", {"status": "failed", "id": "status"})
    assert 'id="status">failed</span>' in status and "text-bg-danger" in status
    table = render_to_string(
        "components/table.html",
        {"rows": [("SMAPE", 1.23456), ("MAE", None)], "numeric": True, "places": 2, "id": "results"},
    )
    assert '<th scope="row">SMAPE</th><td class="num">1.23</td>' in table and '<td class="num">—</td>' in table
    alert = render_to_string("components/alert.html", {"level": "error", "text": "No <b>HTML</b>"})
    assert "alert-danger" in alert and 'role="alert"' in alert and "No &lt;b&gt;HTML&lt;/b&gt;" in alert
    tabs = render_to_string("components/tabs.html", {"tabs": [("a", "A"), ("b", "B")], "active": "b", "target": "t"})
    assert (
        'href="?tab=a" hx-get="?tab=a">A</a>' in tabs
        and 'active" href="?tab=b" hx-get="?tab=b" aria-current="page"' in tabs
    )
