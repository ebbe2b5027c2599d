"""Installs the streaming `LimitedUploadHandler` on every request that may carry a body, before anything reads it
(this middleware sits before CsrfViewMiddleware, which reads POST data). A view states its own, stricter limit with
`@upload_limit(resolver)`; DRF viewset actions may carry the same decorator."""

from __future__ import annotations

from collections.abc import Callable

from .handlers import LimitedUploadHandler, site_limit
from .limits import UploadLimit

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
        request.upload_handlers = [LimitedUploadHandler(request, limit=limit)]
        return
