from django.contrib import admin

from .models import EmailPreference, Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created", "user", "kind", "title", "read_at", "emailed_at", "email_error"]
    list_filter = ["kind"]
    search_fields = ["user__username", "title"]
    readonly_fields = ["created", "emailed_at", "email_error"]


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "created"]
