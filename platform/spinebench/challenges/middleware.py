"""`RoleMemoMiddleware`: each request's role lookups are answered once (spinebench.challenges.roles)."""

from .roles import remembered_roles


class RoleMemoMiddleware:
    """Wraps each request in `remembered_roles()`; static files (whitenoise, before it) never reach it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with remembered_roles():
            return self.get_response(request)
