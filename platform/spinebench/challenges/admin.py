from django.contrib import admin

from .models import Challenge, Phase, Registration
from .signals import ranking_changed


class PhaseInline(admin.StackedInline):
    model = Phase
    extra = 0
    show_change_link = True


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "registration_mode", "is_public"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["organizers"]
    inlines = [PhaseInline]


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ["challenge", "user", "status", "created"]
    list_filter = ["challenge", "status"]
    actions = ["approve", "reject"]

    @admin.action(description="Approve the selected registrations")
    def approve(self, request, queryset):
        queryset.update(status=Registration.Status.APPROVED)

    @admin.action(description="Reject the selected registrations")
    def reject(self, request, queryset):
        queryset.update(status=Registration.Status.REJECTED)


@admin.register(Phase)
class PhaseAdmin(admin.ModelAdmin):
    list_display = ["__str__", "title", "task", "submission_kind", "is_public", "ranking_method"]
    list_filter = ["challenge", "submission_kind", "task"]
    actions = ["rerank"]

    @admin.action(description="Recompute the leaderboard ranks")
    def rerank(self, request, queryset):
        for phase in queryset:
            ranking_changed.send(sender=Phase, phase_pk=phase.pk)
