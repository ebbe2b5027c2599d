"""One-click unsubscribe links: signed (user, kind), no expiry, so a link in an old mail still works."""

from __future__ import annotations

from django.core import signing

SALT = "spinebench.notifications.unsubscribe"


def make_token(*, user_pk: int, kind: str) -> str:
    return signing.Signer(salt=SALT).sign_object({"u": user_pk, "k": kind})


def read_token(token: str) -> tuple[int, str] | None:
    try:
        data = signing.Signer(salt=SALT).unsign_object(token)
        return int(data["u"]), str(data["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
