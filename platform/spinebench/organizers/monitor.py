"""The submission monitor of a challenge: every submission of every phase (hidden phases too), filtered by phase,
status, participant, creation date and baseline or not; and what a submission's monitor page shows besides its
status (the evaluation history and the container runs' log tails). The page and the API share this."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.db.models import QuerySet

from spinebench.algorithms.models import Job
from spinebench.challenges.models import Challenge
from spinebench.evaluation.models import PastEvaluation, RescoreJob
from spinebench.submissions.models import Submission
from spinebench.submissions.status import Status

BASELINE_CHOICES = [("", "all"), ("yes", "baselines only"), ("no", "participants only")]


class MonitorFilter(forms.Form):
    """Every field is optional; `since` and `until` are whole days (inclusive), in the site's time zone."""

    # Chosen from the challenge's phases on the page (a select); the API takes the phase's slug.
    phase = forms.SlugField(required=False, widget=forms.Select, help_text="Only this phase's submissions.")
    status = forms.ChoiceField(choices=[("", "any"), *Status.choices], required=False)
    participant = forms.CharField(max_length=150, required=False, help_text="Part of the username.")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="Created on or after this day (YYYY-MM-DD).")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="Created on or before this day (YYYY-MM-DD).")
    baseline = forms.ChoiceField(choices=BASELINE_CHOICES, required=False)

    def __init__(self, *args, challenge: Challenge, **kwargs):
        super().__init__(*args, **kwargs)
        self.challenge = challenge
        self.fields["phase"].widget.choices = [("", "any"), *challenge.phases.values_list("slug", "title")]

    def clean_phase(self) -> str:
        slug = self.cleaned_data["phase"]
        if slug and not self.challenge.phases.filter(slug=slug).exists():
            raise forms.ValidationError(f"This challenge has no phase {slug!r}.")
        return slug

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The last day comes before the first one.")
        return cleaned


def monitored_submissions(*, challenge: Challenge, filters: dict) -> QuerySet[Submission]:
    """The challenge's submissions matching `filters` (a valid MonitorFilter's cleaned_data), newest first."""
    found = Submission.objects.filter(phase__challenge=challenge).select_related(
        "phase", "creator", "evaluation", "private_evaluation"
    )
    if filters.get("phase"):
        found = found.filter(phase__slug=filters["phase"])
    if filters.get("status"):
        found = found.filter(status=filters["status"])
    if filters.get("participant"):
        found = found.filter(creator__username__icontains=filters["participant"])
    if filters.get("since"):
        found = found.filter(created__date__gte=filters["since"])
    if filters.get("until"):
        found = found.filter(created__date__lte=filters["until"])
    if filters.get("baseline") in ("yes", "no"):
        found = found.filter(is_baseline=filters["baseline"] == "yes")
    return found.order_by("-created", "-pk")


@dataclass(frozen=True)
class ContainerLog:
    case_id: str
    status: str
    exit_code: int | None
    error_message: str
    log_tail: str


def container_logs(submission: Submission) -> list[ContainerLog]:
    """The log tails of a submission's container runs (organizers always see them, hidden phases included)."""
    return [
        ContainerLog(
            case_id=job.case_id or "batch",
            status=job.status,
            exit_code=job.exit_code,
            error_message=job.error_message,
            log_tail=job.log_tail,
        )
        for job in Job.objects.filter(run__submission=submission).order_by("case_id")
    ]


def evaluation_history(submission: Submission) -> list[PastEvaluation]:
    return list(PastEvaluation.objects.filter(submission=submission).order_by("-version"))


def phase_rescore_jobs(phase) -> QuerySet[RescoreJob]:
    return RescoreJob.objects.filter(phase=phase).select_related("requested_by", "failed_submission")
