"""DRF throttles (rates in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], from the environment).

DRF's own classes copy the rates once at import, so a changed setting (tests, a reloaded config) would be ignored;
these read them when a request comes. Anonymous requests count per client address, signed-in ones per user, worker
tokens per token."""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .permissions import is_worker_token


class _RateFromSettings(SimpleRateThrottle):
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_RateFromSettings):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated or is_worker_token(request.auth):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserThrottle(_RateFromSettings):
    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        elif is_worker_token(request.auth):
            ident = f"worker-token-{request.auth.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TokenEndpointThrottle(_RateFromSettings):
    """Password guesses at POST /api/auth/token/, per client address (stricter than `anon`)."""

    scope = "auth_token"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
