"""The Django admin is for site operators only: organizers run their challenges from the console, and a staff flag
alone (which Django's admin would accept, showing every challenge the user has model permissions on) opens nothing."""

from __future__ import annotations

from django.contrib import admin


def operators_only(request) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


def restrict_admin_to_operators() -> None:
    admin.site.has_permission = operators_only  # type: ignore[method-assign]
