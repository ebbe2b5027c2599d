"""The API docs page (Swagger UI from drf-spectacular-sidecar's static files) under the Content-Security-Policy:
drf-spectacular's template has an inline <script> (the UI's configuration) and an inline <style>; this view's
template gives both the request's CSP nonce, so the policy needs no 'unsafe-inline'."""

from drf_spectacular.views import SpectacularSwaggerView


class ApiDocsView(SpectacularSwaggerView):
    template_name = "api/docs.html"
