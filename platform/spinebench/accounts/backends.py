"""django-axes' lockout backend, for sign-ins that come over the network.

authenticate() without a request is not a network sign-in (the shell, management commands, the test client's
login()); axes would raise for it, and there is no client to lock out. Every view that signs people in passes the
request: the login page (Django's AuthenticationForm), the admin's login and POST /api/auth/token/."""

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
