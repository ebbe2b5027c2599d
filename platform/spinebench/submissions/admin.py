from django.contrib import admin

from spinebench.challenges.signals import ranking_changed

from .models import Evaluation, Submission
from .services import CancelRefused, cancel_submission


class EvaluationInline(admin.StackedInline):
    model = Evaluation
    extra = 0
    readonly_fields = ["created", "duration_seconds", "rank"]


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["pk", "phase", "participant_name", "is_baseline", "status", "created"]
    list_filter = ["phase", "status", "is_baseline"]
    readonly_fields = ["status", "status_changed_at", "created", "started_at", "finished_at"]
    inlines = [EvaluationInline]
    actions = ["cancel"]

    @admin.action(description="Cancel the selected submissions")
    def cancel(self, request, queryset):
        for submission in queryset:
            try:
                cancel_submission(submission, actor=request.user)
            except CancelRefused as refusal:
                self.message_user(request, str(refusal), level="warning")


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["submission", "rank", "published", "created"]
    list_filter = ["published"]
    actions = ["publish"]

    @admin.action(description="Publish on the leaderboard (and re-rank)")
    def publish(self, request, queryset):
        queryset.update(published=True)
        for phase_pk in set(queryset.values_list("submission__phase_id", flat=True)):
            ranking_changed.send(sender=Evaluation, phase_pk=phase_pk)
