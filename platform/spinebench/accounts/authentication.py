"""DRF authentication by API token: `Authorization: Token <secret>` (what existing clients send) or `Bearer <secret>`
(what Swagger UI and most HTTP tools send).

A worker token authenticates only on a view that opts in (IsWorkerToken among its permissions, or
`accepts_worker_tokens = True`): a stolen worker host's token must not act as anyone on the participant API."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .models import ApiToken
from .permissions import view_accepts_worker_tokens
from .tokens import find_token, mark_used

KEYWORDS = (b"token", b"bearer")


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # not ours: let the session (or nothing) authenticate
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header: send `Token <secret>`."))
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        token = find_token(secret)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token.revoked is not None:
            raise exceptions.AuthenticationFailed(_("This token was revoked; create a new one."))
        if token.is_expired:
            raise exceptions.AuthenticationFailed(
                _("This token expired on %(date)s; create a new one.") % {"date": token.expires.date().isoformat()}
            )
        if token.kind == ApiToken.Kind.WORKER:
            view = (getattr(request, "parser_context", None) or {}).get("view")
            if view is None or not view_accepts_worker_tokens(view):
                raise exceptions.PermissionDenied(_("A worker token may only be used on worker endpoints."))
            mark_used(token)
            return AnonymousUser(), token
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("This token's account is disabled."))
        mark_used(token)
        return token.user, token

    def authenticate_header(self, request):
        return 'Token realm="api"'
