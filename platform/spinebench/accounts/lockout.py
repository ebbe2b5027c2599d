"""What a locked-out client sees (django-axes calls this through AXES_LOCKOUT_CALLABLE): JSON with 429 and
Retry-After on the API, the locked-out page elsewhere; both say when to try again."""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.http import JsonResponse
from django.shortcuts import render


def lockout_message(request) -> tuple[str, int | None]:
    cool_off = get_cool_off(request)
    if not cool_off:
        return "Too many failed sign-in attempts: this account is locked. Ask a site operator to unlock it.", None
    seconds = max(1, math.ceil(cool_off.total_seconds()))
    minutes = math.ceil(seconds / 60)
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed sign-in attempts. Try again in {wait}.", seconds


def lockout_response(request, original_response=None, credentials=None):
    message, retry_after = lockout_message(request)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response
