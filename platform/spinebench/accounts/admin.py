from django.contrib import admin, messages
from django.utils import timezone

from .models import ApiToken, Profile


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Operators see and revoke tokens here; they are created with the API (user tokens) or
    `manage.py create_worker_token` (worker tokens), which show the secret once."""

    list_display = ["name", "kind", "user", "prefix", "created", "last_used", "expires", "revoked"]
    list_filter = ["kind", "revoked", "expires"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["user", "kind", "prefix", "created", "last_used", "expires", "revoked"]
    fields = ["name", *readonly_fields]
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request, queryset):
        count = queryset.filter(revoked__isnull=True).update(revoked=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    """Verification is only set by following a link; operators see it, they do not fake it."""

    list_display = [
        "user",
        "display_name",
        "affiliation",
        "show_on_leaderboards",
        "verified_email",
        "email_verified_at",
    ]
    search_fields = ["user__username", "display_name", "affiliation", "verified_email"]
    readonly_fields = ["user", "verified_email", "email_verified_at"]
