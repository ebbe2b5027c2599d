"""Permission matrix (issue #16, systematic check 3): every URL pattern and API route of the project × every identity
of ARCHITECTURE's access policy, each answer checked against the table in permission_table.py, and every allowed or
refused body searched for what that identity may not read (hidden ground truth, others' comments, hidden titles).

A route without rows fails test_every_route_and_method_has_rows, so a new view cannot ship unexamined. The world is
built once per module inside a transaction rolled back at the end; every request runs in its own savepoint that is
rolled back too, so a POST (register, cancel, upload, revoke) by one identity never changes what the next one sees."""

import copy

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse

from .matrix import FUNCTION_VIEW_METHODS, IDENTITIES, LOGIN, body_text, leaks, matches, routes, uncovered
from .permission_table import ROWS, TARGETS, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        built = build_world()
        yield built
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def clients(world):
    """identity -> (client for pages, client for /api/): pages get the identity's session, the API its token."""
    made = {}
    for identity in IDENTITIES:
        page, api = Client(), Client(headers={"Authorization": f"Token {world.tokens[identity]}"}
                                     if identity in world.tokens else {})
        if world.users[identity] is not None:
            page.force_login(world.users[identity])
        made[identity] = (page, api)
    return made


def _ask(client, method: str, url: str, data):
    """One request whose every effect is undone: the database (savepoint) and the client's cookies (a logout or a
    login would otherwise end the identity's session for the rows after it)."""
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        call = getattr(client, method.lower())
        response = call(url, data=data() if data else None) if method == "POST" else call(url)
        text = body_text(response)
        transaction.set_rollback(True)
    client.cookies = cookies
    return response, text


def test_every_route_and_method_has_rows():
    missing, stale = uncovered(ROWS, routes())
    assert not missing, "URL patterns/methods without permission-matrix rows (add them to " \
        "tests/security/permission_table.py):\n  " + "\n  ".join(missing)
    assert not stale, "rows for routes/methods that no longer exist:\n  " + "\n  ".join(stale)


@override_settings(ROOT_URLCONF="tests.security.unlisted_urls")
def test_a_view_without_rows_is_named():
    missing, stale = uncovered(ROWS, routes())
    assert missing == ["GET brand-new", "POST brand-new"] and not stale


def test_routes_include_router_suffixes_and_only_the_admin_login():
    found = {route.name: route for route in routes()}
    assert found["phase-inputs"].methods == ("GET",)
    assert found["api-token-item-detail"].methods == ("DELETE", "GET")
    assert {route.name for route in routes() if route.format_suffix} >= {"phase-inputs", "api-root"}
    assert [name for name in found if name.startswith("admin:")] == ["admin:login"]


def test_rows_name_known_targets():
    assert {row.target for row in ROWS} <= set(TARGETS)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_matrix_row(world, clients, row):
    with_suffix = {route.name for route in routes() if route.format_suffix}
    kwargs = TARGETS[row.target](world)
    variants = [(reverse(row.name, kwargs=kwargs) + row.query, row.expect)]
    if row.name in with_suffix:
        variants.append((reverse(row.name, kwargs={**kwargs, "format": "json"}) + row.query,
                         row.format_expect or row.expect))
    login_url = reverse(settings.LOGIN_URL)
    problems = []
    for url, expect in variants:
        for identity in IDENTITIES:
            client = clients[identity][1 if url.startswith("/api/") else 0]
            response, text = _ask(client, row.method, url, row.data)
            location = response.get("Location", "")
            if not matches(expect[identity], response.status_code, location, login_url):
                wanted = "302 to login" if expect[identity] == LOGIN else expect[identity]
                problems.append(f"{identity}: {row.method} {url} gave {response.status_code} {location}, "
                                f"expected {wanted}")
            problems += [f"{identity}: {row.method} {url}: {leak}" for leak in leaks(text, identity, world.secrets)]
    assert not problems, "\n".join(problems)


UNANSWERED_ALLOWED = {401, 403, 405}
#: Django's PasswordResetConfirmView answers an invalid link with its "invalid link" page before it looks at the
#: method (200 for any method; nothing is read or changed).
UNANSWERED_EXCEPTIONS = {"password_reset_confirm": {200}}


def _routes_with_declared_methods():
    """Routes whose view declares its methods (DRF views, class-based views): the others are refused."""
    declared = {}
    for route in routes():
        if not route.format_suffix and route.methods != FUNCTION_VIEW_METHODS:
            declared.setdefault(route.name, set()).update(route.methods)
    return sorted(declared.items())


def test_unanswered_methods_are_refused(world, clients):
    """A method the view does not declare never does anything: 405, or the refusal of the authentication or permission
    checks DRF runs first (401 anonymous, 403 worker token), or a page's redirect to the login page. The target is the
    first row's of the route."""
    login_url = reverse(settings.LOGIN_URL)
    target_of = {}
    for row in ROWS:
        target_of.setdefault(row.name, row.target)
    problems = []
    for name, methods in _routes_with_declared_methods():
        url = reverse(name, kwargs=TARGETS[target_of[name]](world))
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods):
            for identity in IDENTITIES:
                client = clients[identity][1 if url.startswith("/api/") else 0]
                response, _ = _ask(client, method, url, None)
                allowed = UNANSWERED_ALLOWED | UNANSWERED_EXCEPTIONS.get(name, set())
                if not (response.status_code in allowed or matches(LOGIN, response.status_code,
                                                                   response.get("Location", ""), login_url)):
                    problems.append(f"{identity}: {method} {url} gave {response.status_code}")
    assert not problems, "\n".join(problems)


#: The token exchange authenticates nobody by session (a password in, a token out), so no cross-site request can act
#: as the signed-in user there: DRF leaves it without CSRF check, by design.
#: One-click unsubscribe (RFC 8058 List-Unsubscribe-Post): a mail client POSTs to the signed link without any session
#: or cookie, so a CSRF token cannot exist there; the signed token in the URL is what authorises it.
CSRF_EXEMPT = {"api-token", "notifications:unsubscribe"}


def test_state_changing_requests_need_the_csrf_token(world):
    """Every POST/PUT/DELETE row, sent by the signed-in participant's browser session without a CSRF token (a forged
    cross-site request), is refused with 403 before the view acts: no view is csrf_exempt by accident."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.users["participant"])
    problems = []
    for row in ROWS:
        if row.method == "GET" or row.name in CSRF_EXEMPT:
            continue
        url = reverse(row.name, kwargs=TARGETS[row.target](world))
        response, _ = _ask(browser, row.method, url, row.data)
        if response.status_code != 403 or b"CSRF" not in response.content:
            problems.append(f"{row.id}: {response.status_code}")
    assert not problems, "requests without CSRF token not refused:\n" + "\n".join(problems)
