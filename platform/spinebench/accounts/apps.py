from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-up and sign-in, and the API tokens (the lowest app: every other app may use it, it uses none)."""

    name = "spinebench.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Registers the OpenAPI description of the token authentication and the settings checks.
        from . import checks, schema  # noqa: F401
