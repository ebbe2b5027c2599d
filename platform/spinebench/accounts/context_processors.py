"""`account_notice`: whether to show the "add and verify your email" banner (base template)."""

from .profiles import has_verified_email


def account_notice(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"needs_verified_email": not has_verified_email(user)}
