"""Project-wide error views. Under /api/ a URL that matches no route is answered like every other API refusal
(JSON `{"detail": ...}`), not with the HTML page: API clients and the OpenAPI schema expect JSON there."""

from django.http import JsonResponse
from django.views import defaults


def page_not_found(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
