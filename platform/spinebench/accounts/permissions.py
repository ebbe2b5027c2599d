"""DRF permissions for API tokens."""

from rest_framework.permissions import BasePermission

from .models import ApiToken


def is_worker_token(auth) -> bool:
    return isinstance(auth, ApiToken) and auth.kind == ApiToken.Kind.WORKER


class IsWorkerToken(BasePermission):
    """Only a worker token (a remote worker host's). Putting this on a view is also how the view opts in to worker
    tokens at all: everywhere else they are refused at authentication."""

    message = "This endpoint is for worker tokens (python manage.py create_worker_token NAME)."

    def has_permission(self, request, view) -> bool:
        return is_worker_token(request.auth)


def view_accepts_worker_tokens(view) -> bool:
    """Read from the view's permission classes (an action's own, on a viewset), not get_permissions(): this runs
    during authentication, where a get_permissions() that looks at request.user would recurse."""
    if getattr(view, "accepts_worker_tokens", False):
        return True
    return any(
        isinstance(permission, type) and issubclass(permission, IsWorkerToken)
        for permission in getattr(view, "permission_classes", ())
    )
