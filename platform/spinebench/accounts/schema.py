"""OpenAPI description of the token authentication (drf-spectacular finds it by the class path): a bearer token,
so the API docs' Authorize button sends `Authorization: Bearer <secret>`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "spinebench.accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from POST /api/auth/token/, sent as `Authorization: Token <secret>` or "
            "`Authorization: Bearer <secret>`.",
        }
