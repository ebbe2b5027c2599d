"""M6 brute force: wrong passwords on the login page and the token endpoint were never throttled. Now django-axes
locks a (username, client address) out after AXES_FAILURE_LIMIT failures for AXES_COOLOFF_TIME, on both, and DRF
throttles bound API requests (anonymous per address, signed-in per user, the token endpoint stricter).
Small limits through settings; the cool-off passes by moving the recorded attempts back, never by sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from spinebench.accounts.models import ApiToken
from spinebench.accounts.tokens import issue_token

from .factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests/platform/factories.UserFactory
FAILURE_LIMIT = 3


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.AXES_FAILURE_LIMIT = FAILURE_LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    cache.clear()  # DRF throttles count in the cache
    yield
    cache.clear()


def rates(settings, **scopes):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "1000/min", "user": "1000/min", "auth_token": "1000/min", **scopes},
    }


def login_page(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def cool_off_passes():
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))


def test_login_page_locks_out_after_the_limit_even_with_the_right_password():
    user = UserFactory()
    client = Client()
    for _ in range(FAILURE_LIMIT - 1):
        response = login_page(client, user.username, "wrong")
        assert response.status_code == 200 and not signed_in(client)  # the form again, with its error
    locked = login_page(client, user.username, "wrong")
    assert locked.status_code == 429 and "Try again in 15 minutes" in locked.content.decode()
    refused = login_page(client, user.username, PASSWORD)
    assert refused.status_code == 429 and not signed_in(client)
    assert int(refused["Retry-After"]) == 15 * 60
    other = UserFactory()  # another account from the same address is not locked by these failures
    assert login_page(Client(), other.username, PASSWORD).status_code == 302
    cool_off_passes()
    response = login_page(client, user.username, PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_a_successful_login_resets_the_count():
    user = UserFactory()
    for _ in range(2):
        for _ in range(FAILURE_LIMIT - 1):
            login_page(Client(), user.username, "wrong")
        client = Client()
        assert login_page(client, user.username, PASSWORD).status_code == 302 and signed_in(client)


def test_token_endpoint_locks_out_after_the_limit_even_with_the_right_password():
    user = UserFactory()
    client = APIClient()
    for _ in range(FAILURE_LIMIT - 1):
        assert client.post("/api/auth/token/", {"username": user.username, "password": "wrong"}).status_code == 400
    locked = client.post("/api/auth/token/", {"username": user.username, "password": "wrong"})
    assert locked.status_code == 429 and "Too many failed sign-in attempts" in locked.json()["detail"]
    refused = client.post("/api/auth/token/", {"username": user.username, "password": PASSWORD})
    assert refused.status_code == 429 and "Try again in 15 minutes" in refused.json()["detail"]
    assert refused["Retry-After"] == str(15 * 60)
    assert not ApiToken.objects.exists()
    cool_off_passes()
    assert client.post("/api/auth/token/", {"username": user.username, "password": PASSWORD}).status_code == 200


def test_failures_on_the_login_page_count_on_the_token_endpoint_too():
    user = UserFactory()
    for _ in range(FAILURE_LIMIT):
        login_page(Client(), user.username, "wrong")
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429 and not ApiToken.objects.exists()


def test_token_endpoint_is_throttled_per_address(settings):
    rates(settings, auth_token="3/min")
    user = UserFactory()
    client = APIClient()
    for _ in range(3):
        assert client.post("/api/auth/token/", {"username": user.username, "password": PASSWORD}).status_code == 200
    throttled = client.post("/api/auth/token/", {"username": user.username, "password": PASSWORD})
    assert throttled.status_code == 429 and "throttled" in throttled.json()["detail"].lower()
    assert int(throttled["Retry-After"]) > 0
    assert ApiToken.objects.count() == 3
    elsewhere = APIClient(REMOTE_ADDR="10.0.0.7")
    assert elsewhere.post("/api/auth/token/", {"username": user.username, "password": PASSWORD}).status_code == 200


def test_anonymous_requests_are_throttled_per_address_and_users_per_user(settings):
    rates(settings, anon="2/min", user="3/min")
    anonymous = APIClient()
    assert [anonymous.get("/api/challenges/").status_code for _ in range(3)] == [200, 200, 429]
    alice, bob = (APIClient() for _ in range(2))
    alice.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user=UserFactory(), name='a').secret}")
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user=UserFactory(), name='b').secret}")
    # Signed-in users are not counted against their address's anonymous allowance, but against their own.
    assert [alice.get("/api/challenges/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert bob.get("/api/challenges/").status_code == 200
