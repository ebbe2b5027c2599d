"""M6 tokens: one model (accounts.ApiToken), only a hash stored, named, expiring (90 days by default, at most a
year), revocable, `last_used` written at most once a minute; `Token` and `Bearer` headers; worker tokens refused on
every API view that does not opt in with IsWorkerToken."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from spinebench.accounts.models import ApiToken
from spinebench.accounts.permissions import IsWorkerToken
from spinebench.accounts.tokens import issue_token

from .factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests/platform/factories.UserFactory


def with_token(secret: str, keyword: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {secret}")
    return client


def request_token(user, **extra):
    return APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD, **extra})


def test_token_endpoint_stores_only_the_hash_and_shows_the_secret_once():
    user = UserFactory()
    response = request_token(user, name="laptop")
    assert response.status_code == 200, response.content
    body = response.json()
    secret = body["token"]
    assert len(secret) >= 40  # 32 random bytes, url-safe
    token = ApiToken.objects.get(pk=body["id"])
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values_list().get()]
    assert not any(secret in value for value in stored)  # the secret itself is nowhere in the row
    assert (token.user, token.name, token.kind, token.revoked) == (user, "laptop", "user", None)
    listed = with_token(secret).get("/api/auth/tokens/").json()
    assert listed == [
        {key: value for key, value in body.items() if key != "token"} | {"last_used": listed[0]["last_used"]}
    ]
    assert listed[0]["last_used"] is not None  # this very request used it
    assert secret not in str(listed) and token.key_hash not in str(listed)


def test_default_lifetime_is_the_setting_and_a_year_is_the_most(settings):
    user = UserFactory()
    default = ApiToken.objects.get(pk=request_token(user).json()["id"])
    assert default.expires - default.created == timedelta(days=90)
    settings.SPINEBENCH_TOKEN_TTL_DAYS = 30
    thirty = ApiToken.objects.get(pk=request_token(user).json()["id"])
    assert thirty.expires - thirty.created == timedelta(days=30)
    week = ApiToken.objects.get(pk=request_token(user, expires_in_days=7).json()["id"])
    assert week.expires - week.created == timedelta(days=7)
    assert request_token(user, expires_in_days=365).status_code == 200
    too_long = request_token(user, expires_in_days=366)
    assert too_long.status_code == 400 and "expires_in_days" in too_long.json()
    assert ApiToken.objects.filter(user=user).count() == 4


def test_a_lifetime_setting_over_a_year_fails_the_system_check(settings):
    from django.core.checks import run_checks

    settings.SPINEBENCH_TOKEN_TTL_DAYS = 400
    assert "accounts.E001" in [message.id for message in run_checks()]
    settings.SPINEBENCH_TOKEN_TTL_DAYS = 90
    assert "accounts.E001" not in [message.id for message in run_checks()]


def test_wrong_password_gets_no_token():
    user = UserFactory()
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": "wrong"})
    assert response.status_code == 400 and "Unable to log in" in str(response.json())
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token", "bearer"])
def test_token_and_bearer_headers_authenticate(keyword):
    user = UserFactory()
    secret = issue_token(user=user, name="cli").secret
    response = with_token(secret, keyword).get("/api/auth/tokens/")
    assert response.status_code == 200 and [row["name"] for row in response.json()] == ["cli"]


def test_expired_revoked_and_unknown_tokens_get_401_saying_why():
    user = UserFactory()
    expired = issue_token(user=user, name="old")
    now = timezone.now()
    ApiToken.objects.filter(pk=expired.token.pk).update(
        created=now - timedelta(days=90), expires=now - timedelta(seconds=1)
    )
    response = with_token(expired.secret).get("/api/challenges/")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    revoked = issue_token(user=user, name="leaked")
    assert with_token(revoked.secret).delete(f"/api/auth/tokens/{revoked.token.pk}/").status_code == 204
    response = with_token(revoked.secret).get("/api/challenges/")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    response = with_token("not-a-token").get("/api/challenges/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    assert response["WWW-Authenticate"].startswith("Token")
    assert APIClient().get("/api/challenges/").status_code == 200  # no header at all: anonymous, as before


def test_list_shows_only_own_tokens_and_delete_revokes_only_own():
    owner, other = UserFactory(), UserFactory()
    mine = issue_token(user=owner, name="mine")
    theirs = issue_token(user=other, name="theirs")
    issue_token(name="gpu-host", kind=ApiToken.Kind.WORKER)
    client = with_token(mine.secret)
    assert [row["name"] for row in client.get("/api/auth/tokens/").json()] == ["mine"]
    assert client.delete(f"/api/auth/tokens/{theirs.token.pk}/").status_code == 404
    theirs.token.refresh_from_db()
    assert theirs.token.revoked is None
    assert APIClient().get("/api/auth/tokens/").status_code == 401
    assert client.delete(f"/api/auth/tokens/{mine.token.pk}/").status_code == 204
    mine.token.refresh_from_db()
    assert mine.token.revoked is not None and not mine.token.is_active
    session = APIClient()
    session.force_login(owner)
    listed = session.get("/api/auth/tokens/").json()  # still listed, marked revoked
    assert [(row["name"], row["is_active"]) for row in listed] == [("mine", False)]


def test_last_used_is_written_at_most_once_a_minute():
    secret = issue_token(user=UserFactory(), name="poller").secret
    client = with_token(secret)
    client.get("/api/challenges/")
    token = ApiToken.objects.get()
    first = token.last_used
    assert first is not None and timezone.now() - first < timedelta(seconds=30)
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/challenges/")
    assert not [q for q in queries.captured_queries if q["sql"].upper().startswith("UPDATE")]
    token.refresh_from_db()
    assert token.last_used == first
    ApiToken.objects.filter(pk=token.pk).update(last_used=first - timedelta(minutes=2))
    client.get("/api/challenges/")
    token.refresh_from_db()
    assert token.last_used > first


def test_create_worker_token_command_prints_the_secret_once():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_worker_token", "gpu-host-1", "--days", "30", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert (token.kind, token.name, token.user) == ("worker", "gpu-host-1", None)
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.expires - token.created == timedelta(days=30)
    assert "not shown again" in err.getvalue()
    with pytest.raises(Exception, match="1 to 365 days"):
        call_command("create_worker_token", "too-long", "--days", "400", stdout=io.StringIO(), stderr=io.StringIO())


class WorkerHeartbeat(APIView):
    """A worker endpoint as the workers app builds them: it opts in with IsWorkerToken."""

    permission_classes = [IsWorkerToken]

    def post(self, request):
        return Response({"token": request.auth.name})


def test_worker_endpoint_takes_worker_tokens_only():
    worker = issue_token(name="gpu-host-1", kind=ApiToken.Kind.WORKER).secret
    user = issue_token(user=UserFactory(), name="cli").secret
    factory = APIRequestFactory()
    view = WorkerHeartbeat.as_view()
    accepted = view(factory.post("/", HTTP_AUTHORIZATION=f"Bearer {worker}"))
    assert accepted.status_code == 200 and accepted.data == {"token": "gpu-host-1"}
    assert view(factory.post("/", HTTP_AUTHORIZATION=f"Token {user}")).status_code == 403
    assert view(factory.post("/")).status_code in (401, 403)
    ApiToken.objects.filter(kind="worker").update(revoked=timezone.now())
    assert view(factory.post("/", HTTP_AUTHORIZATION=f"Bearer {worker}")).status_code == 401


def api_routes():
    """Every named URL under /api/, with placeholder arguments (authentication runs before any lookup)."""

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    routes = set()
    for route in walk(get_resolver().url_patterns):
        route = route.replace("^", "").replace("$", "")
        if not route.startswith("api/") or "format" in route:
            continue
        route = re.sub(r"\(\?P<[^>]+>[^)]+\)|<[^>]+>", "1", route)  # regex groups and path converters
        routes.add("/" + route.replace("\\.", ".").replace("/?", "/"))
    return sorted(routes)


def test_every_api_route_refuses_a_worker_token():
    """... except the worker-token API (/api/worker/, docs/workers.md), the only routes that take one."""
    routes = api_routes()
    assert "/api/challenges/" in routes and "/api/auth/tokens/1/" in routes and "/api/schema/" in routes
    client = with_token(issue_token(name="gpu-host-1", kind=ApiToken.Kind.WORKER).secret)
    worker_routes = [route for route in routes if route.startswith("/api/worker/")]
    assert len(worker_routes) == 13
    for route in worker_routes:  # taken (then answered by the view: 400/404/405...), never refused as a token
        for method in ("get", "post"):
            response = getattr(client, method)(route)
            assert response.status_code != 401 and "worker endpoints" not in response.content.decode(), (
                method, route, response.status_code)
    for route in routes:
        if route == "/api/auth/token/" or route in worker_routes:
            continue  # the password exchange reads no Authorization header
        for method in ("get", "post", "delete"):
            response = getattr(client, method)(route)
            assert response.status_code == 403, (method, route, response.status_code, response.content[:300])
            if response["Content-Type"].startswith("application/json"):  # the docs page renders HTML
                assert "worker endpoints" in response.json()["detail"], (method, route)


class WorkerOrStaff(APIView):
    """A composed permission hides IsWorkerToken from the class check: such a view opts in by attribute."""

    permission_classes = [IsWorkerToken | IsAdminUser]
    accepts_worker_tokens = True

    def get(self, request):
        return Response({"kind": request.auth.kind})


class ComposedWithoutOptIn(WorkerOrStaff):
    accepts_worker_tokens = False


def test_a_view_with_a_composed_permission_opts_in_by_attribute():
    worker = issue_token(name="cpu-host", kind=ApiToken.Kind.WORKER).secret
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {worker}")
    response = WorkerOrStaff.as_view()(request)
    assert response.status_code == 200 and response.data == {"kind": "worker"}
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {worker}")
    assert ComposedWithoutOptIn.as_view()(request).status_code == 403
