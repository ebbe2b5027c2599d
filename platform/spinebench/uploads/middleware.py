"""Installs the streaming `LimitedUploadHandler` on every request that may carry a body, before anything reads it
(this middleware sits before CsrfViewMiddleware, which reads POST data). A view states its own, stricter limit with
`@upload_limit(resolver)`; DRF viewset actions may carry the same decorator.

A body whose declared Content-Length is already over the limit is answered 413 here, without reading a byte of it
(JSON for API views and clients asking for JSON, a short page otherwise): CSRF cannot be checked without reading the
body, and nothing changes state, so this refusal needs no token. Anything else streams through the handler, which
refuses a file the moment it passes the limit."""

from __future__ import annotations

from collections.abc import Callable

from django.http import JsonResponse
from django.shortcuts import render

from .handlers import FORM_OVERHEAD_BYTES, LimitedUploadHandler, site_limit
from .limits import UploadLimit, UploadRefused, human_size

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

#: resolver(request, **view_kwargs) -> UploadLimit | None (None: only the site's limit applies)
LimitResolver = Callable[..., "UploadLimit | None"]


def upload_limit(resolver: LimitResolver):
    """Decorator for a view function or a DRF action: `resolver` gives the view's own limit from the URL kwargs."""

    def mark(view):
        view.upload_limit_resolver = resolver
        return view

    return mark


def _resolver_of(view_func, method: str) -> LimitResolver | None:
    resolver = getattr(view_func, "upload_limit_resolver", None)
    if resolver is not None:
        return resolver
    actions, cls = getattr(view_func, "actions", None), getattr(view_func, "cls", None)  # DRF viewset routes
    if actions and cls is not None and method.lower() in actions:
        return getattr(getattr(cls, actions[method.lower()], None), "upload_limit_resolver", None)
    return None


def _declared_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _refusal_response(request, view_func, refusal: UploadRefused):
    wants_json = getattr(view_func, "cls", None) is not None or "json" in request.headers.get("Accept", "")
    if wants_json:
        return JsonResponse(refusal.as_dict(), status=refusal.status)
    return render(request, "uploads/refused.html", {"refusal": refusal}, status=refusal.status)


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in BODY_METHODS or hasattr(request, "_files"):
            return
        limit = site_limit()
        resolver = _resolver_of(view_func, request.method)
        if resolver is not None:
            limit = UploadLimit.strictest(limit, resolver(request, **view_kwargs))
        declared = _declared_length(request)
        if declared > limit.bytes + FORM_OVERHEAD_BYTES:
            refusal = UploadRefused(
                f"The upload is {human_size(declared)}, over {limit.describe()}; nothing was stored.",
                code="too_large", limit_bytes=limit.bytes,
            )
            return _refusal_response(request, view_func, refusal)
        request.upload_handlers = [LimitedUploadHandler(request, limit=limit)]
        return
