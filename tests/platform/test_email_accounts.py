"""Accounts with email, through a real SMTP server (aiosmtpd on 127.0.0.1): sign-up verification by a signed link,
expired and tampered links, password reset, email change, the banner, the profile's validation and the token page."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client

from spinebench.accounts.email_links import VERIFY_SALT, make_token
from spinebench.accounts.models import ApiToken, Profile
from spinebench.accounts.profiles import has_verified_email

from .factories import UserFactory
from .smtp_server import SmtpServer, body

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "a-much-better-passphrase-42"


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()  # the hourly count of link mails per account lives in the cache
    yield
    cache.clear()


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    server.start()
    server.configure(settings)
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    yield server
    server.stop()


def link_path(text: str, marker: str) -> str:
    urls = [u for u in re.findall(r"https?://\S+", text) if marker in u]
    assert len(urls) == 1, text
    return urlsplit(urls[0]).path


def signup(client, *, username="newcomer", email="Newcomer@Example.org"):
    return client.post(
        "/accounts/signup/",
        {
            "username": username,
            "email": email,
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )


def test_signup_mails_a_link_that_verifies_the_address(smtp):
    client = Client()
    response = signup(client)
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newcomer")
    assert user.email == "Newcomer@example.org" and not has_verified_email(user)
    assert "Please verify your email address" in client.get("/notifications/").content.decode()  # the banner
    [mail] = smtp.inbox.to("Newcomer@example.org")
    assert mail["Subject"] == "SpineBench: verify your email address"
    assert mail["From"] == "SpineBench <noreply@localhost>"
    path = link_path(body(mail), "/accounts/verify/")
    followed = client.get(path)
    assert followed.status_code == 302 and followed.url == "/accounts/profile/"
    user.refresh_from_db()
    assert has_verified_email(user)
    assert Profile.objects.get(user=user).email_verified_at is not None
    assert "Please verify your email address" not in client.get("/notifications/").content.decode()


def test_email_must_be_unique_ignoring_case(smtp):
    UserFactory(username="first", email="taken@example.org")
    response = signup(Client(), email="TAKEN@example.org")
    assert response.status_code == 200
    assert "An account with this email exists" in response.content.decode()
    assert not get_user_model().objects.filter(username="newcomer").exists()
    assert smtp.inbox.messages == []


def test_signup_requires_an_email():
    response = Client().post("/accounts/signup/", {"username": "x", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 200 and "This field is required" in response.content.decode()


def test_expired_link_offers_a_new_one_and_tampered_link_is_refused(smtp, settings):
    client = Client()
    signup(client)
    user = get_user_model().objects.get(username="newcomer")
    path = link_path(body(smtp.inbox.messages[0]), "/accounts/verify/")
    tampered = client.get(path[:-3] + "xyz/")
    assert tampered.status_code == 400 and "This link is not valid" in tampered.content.decode()
    settings.SPINEBENCH_EMAIL_LINK_HOURS = 0  # every link is now past its lifetime
    client.logout()
    expired = client.get(path)
    assert expired.status_code == 400
    page = expired.content.decode()
    assert "This link has expired" in page and "Send a new link" in page
    assert not has_verified_email(user)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    resent = client.post("/accounts/verify-again/", {"token": token})  # anonymous: the expired link identifies them
    assert resent.status_code == 302
    assert len(smtp.inbox.to("Newcomer@example.org")) == 2
    settings.SPINEBENCH_EMAIL_LINK_HOURS = 48
    assert client.get(link_path(body(smtp.inbox.messages[1]), "/accounts/verify/")).status_code == 302
    assert has_verified_email(user)


def test_a_link_for_an_old_address_does_not_verify_the_new_one():
    user = UserFactory(email="old@example.org")
    token = make_token(user=user, email="old@example.org", salt=VERIFY_SALT)
    user.email = "new@example.org"
    user.save()
    assert Client().get(f"/accounts/verify/{token}/").status_code == 400
    assert not has_verified_email(user)
    forged = signing.TimestampSigner(salt="another-salt").sign_object({"u": user.pk, "e": user.email})
    assert Client().get(f"/accounts/verify/{forged}/").status_code == 400


def test_password_reset_round_trip(smtp):
    user = UserFactory(username="forgetful", email="forgetful@example.org")
    client = Client()
    assert client.post("/accounts/password_reset/", {"email": "FORGETFUL@example.org"}).status_code == 302
    [mail] = smtp.inbox.to("forgetful@example.org")
    assert mail["Subject"] == "SpineBench: reset your password"
    path = link_path(body(mail), "/accounts/reset/")
    form_page = client.get(path, follow=True)  # Django moves the token into the session, then shows the form
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done.url == "/accounts/reset/done/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    reused = client.get(path, follow=True)
    assert "This link is not valid" in reused.content.decode()


def test_email_change_takes_effect_only_when_the_new_address_confirms(smtp):
    user = UserFactory(email="before@example.org")
    client = Client()
    client.force_login(user)
    taken = UserFactory(email="other@example.org")
    refused = client.post("/accounts/profile/", {"action": "email", "email": taken.email.upper()})
    assert "An account with this email exists" in refused.content.decode()
    client.post("/accounts/profile/", {"action": "email", "email": "after@example.org"})
    user.refresh_from_db()
    assert user.email == "before@example.org"  # not yet
    [mail] = smtp.inbox.to("after@example.org")
    assert client.get(link_path(body(mail), "/accounts/email/confirm/")).status_code == 302
    user.refresh_from_db()
    assert user.email == "after@example.org" and has_verified_email(user)


def test_account_without_email_keeps_working_and_sees_the_banner():
    user = UserFactory(email="")
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    page = client.get("/accounts/profile/").content.decode()
    assert "add an email address" in page
    assert not has_verified_email(user)


def test_profile_validates_orcid_github_and_website():
    user = UserFactory()
    client = Client()
    client.force_login(user)
    bad = client.post(
        "/accounts/profile/",
        {
            "action": "profile",
            "orcid": "0000-0002-1825-0098",
            "github": "-bad-",
            "website": "not a url",
            "show_on_leaderboards": "profile",
        },
    ).content.decode()
    assert "check digit does not match" in bad and "single hyphens" in bad and "Enter a valid URL" in bad
    good = client.post(
        "/accounts/profile/",
        {
            "action": "profile",
            "display_name": "Ada",
            "affiliation": "Lab",
            "orcid": "0000-0002-1825-0097",
            "github": "ada-l",
            "website": "https://example.org",
            "show_on_leaderboards": "profile",
        },
    )
    assert good.status_code == 302
    profile = Profile.objects.get(user=user)
    assert (profile.orcid, profile.leaderboard_name) == ("0000-0002-1825-0097", "Ada (Lab)")


def test_token_page_shows_the_secret_once_and_revokes():
    user = UserFactory()
    client = Client()
    client.force_login(user)
    created = client.post("/accounts/tokens/", {"name": "laptop", "expires_in_days": 30}).content.decode()
    secret = re.search(r'<code class="token-secret">([^<]+)</code>', created).group(1)
    token = ApiToken.objects.get(user=user, name="laptop")
    assert token.prefix == secret[:6] and token.expires - token.created == timedelta(days=30)
    api = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    assert api.get("/api/auth/tokens/").status_code == 200
    listing = client.get("/accounts/tokens/").content.decode()
    assert "laptop" in listing and secret not in listing
    other = UserFactory()
    outsider = Client()
    outsider.force_login(other)
    assert outsider.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    assert api.get("/api/auth/tokens/").status_code == 401
    assert "revoked" in client.get("/accounts/tokens/").content.decode()


def test_account_and_notification_pages_satisfy_the_content_security_policy():
    from .test_headers import assert_page_satisfies_policy

    user = UserFactory(email="")
    client = Client()
    client.force_login(user)
    for url in (
        "/accounts/profile/",
        "/accounts/tokens/",
        "/notifications/",
        "/notifications/preferences/",
        "/accounts/password_change/",
    ):
        assert_page_satisfies_policy(client.get(url))
    anonymous = Client()
    for url in ("/accounts/password_reset/", "/accounts/signup/"):
        assert_page_satisfies_policy(anonymous.get(url))


def test_signup_with_the_mail_server_down_still_creates_the_account(smtp):
    smtp.stop()
    client = Client()
    response = signup(client, username="patient", email="patient@example.org")
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert "We could not send the mail just now" in page and "Send a new link" in page
    user = get_user_model().objects.get(username="patient")
    assert not has_verified_email(user)
    smtp.start()
    client.post("/accounts/verify-again/")
    [mail] = smtp.inbox.to("patient@example.org")
    assert client.get(link_path(body(mail), "/accounts/verify/")).status_code == 302
    assert has_verified_email(user)


@pytest.mark.parametrize(
    ("email_url", "expected"),
    [
        (None, {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": "{var}/mail"}),
        (
            "smtp+tls://mailer:s3cret@mail.example.org:587",
            {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "mail.example.org",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "mailer",
                "EMAIL_HOST_PASSWORD": "s3cret",
                "EMAIL_USE_TLS": True,
            },
        ),
    ],
    ids=["embedded-files", "email-url"],
)
def test_email_settings_come_from_the_environment(tmp_path, email_url, expected):
    """A fresh interpreter imports the base settings as `make run` / production would (no pytest overrides)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if key not in ("EMAIL_URL", "DEFAULT_FROM_EMAIL")}
    env.update(
        {"SPINEBENCH_VAR_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(repo / "platform"), str(repo)])}
    )
    if email_url:
        env["EMAIL_URL"] = email_url
    names = sorted(expected) + ["DEFAULT_FROM_EMAIL"]
    code = (
        "import json; from spinebench.settings import base as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
    )
    values = json.loads(out.stdout.strip().splitlines()[-1])
    want = {key: (value.format(var=tmp_path) if isinstance(value, str) else value) for key, value in expected.items()}
    assert values == want | {"DEFAULT_FROM_EMAIL": "SpineBench <noreply@localhost>"}


def test_embedded_default_writes_mails_under_var_mail(tmp_path):
    """`make run` without EMAIL_URL: a mail sent through Django lands as a file in SPINEBENCH_VAR_DIR/mail."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if key != "EMAIL_URL"}
    env.update(
        {
            "SPINEBENCH_VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "spinebench.settings.local",
            "PYTHONPATH": os.pathsep.join([str(repo / "platform"), str(repo)]),
        }
    )
    code = (
        "import django; django.setup(); from django.core.mail import send_mail; "
        "send_mail('Hi', 'body 42', None, ['a@example.org'])"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path, capture_output=True)
    [written] = list((tmp_path / "mail").iterdir())
    text = written.read_text()
    assert "Subject: Hi" in text and "body 42" in text and "To: a@example.org" in text


def test_link_mails_per_account_are_limited(smtp, settings):
    settings.SPINEBENCH_LINK_MAILS_PER_HOUR = 3
    user = UserFactory(email="me@example.org")
    client = Client()
    client.force_login(user)
    for n in range(3):
        client.post("/accounts/profile/", {"action": "email", "email": f"target{n}@example.org"})
    assert len(smtp.inbox.messages) == 3
    refused = client.post("/accounts/profile/", {"action": "email", "email": "victim@example.org"}, follow=True)
    assert "You asked for many link mails in the last hour" in refused.content.decode()
    assert client.post("/accounts/verify-again/", follow=True).status_code == 200
    assert len(smtp.inbox.messages) == 3 and not smtp.inbox.to("victim@example.org")
