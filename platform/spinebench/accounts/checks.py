"""Settings checks: a token lifetime outside 1..365 days is a configuration error, not something to clamp silently."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def token_lifetime(app_configs, **kwargs):
    from .tokens import MAX_TOKEN_DAYS

    days = getattr(settings, "SPINEBENCH_TOKEN_TTL_DAYS", None)
    if isinstance(days, int) and 1 <= days <= MAX_TOKEN_DAYS:
        return []
    return [
        Error(
            f"SPINEBENCH_TOKEN_TTL_DAYS must be a whole number of days from 1 to {MAX_TOKEN_DAYS}; it is {days!r}.",
            id="accounts.E001",
        )
    ]
