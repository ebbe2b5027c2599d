"""Versioned evaluations. A phase has an evaluation version (`Phase.evaluation_version`); a submission's current
evaluation is its `submissions.Evaluation` row, which records the version that produced it. A re-score of a phase
(`RescoreJob`) evaluates every succeeded submission again into `StagedScore` rows and, once all are done, switches
the whole phase at once: each replaced evaluation becomes a `PastEvaluation` (the submission's history), the staged
scores become the current ones under the next version, and the leaderboard is ranked again (its snapshot names the
version)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from spinebench.submissions.models import Part
from spinebench.submissions.status import ACTIVE, Status


class RescoreJob(models.Model):
    """One re-score of a phase, moving through the one status state machine (spinebench.submissions.status):
    pending -> validating -> queued -> running -> scoring (the switch) -> succeeded | failed. `scored` of `total`
    submissions are evaluated so far; a failure names the submission in `error_message` and leaves the phase as it
    was."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="rescore_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(
        max_length=500, blank=True, help_text="Why the phase is re-scored (e.g. corrected labels of case 12)."
    )
    from_version = models.PositiveIntegerField(help_text="The phase's evaluation version when the job was asked for.")
    to_version = models.PositiveIntegerField(help_text="The version the phase moves to when the job succeeds.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    error_message = models.TextField(blank=True, help_text="Which submission failed and why (shown to organizers).")
    total = models.PositiveIntegerField(default=0, help_text="Succeeded submissions to evaluate again.")
    scored = models.PositiveIntegerField(default=0, help_text="Submissions evaluated again so far.")
    failed_submission = models.ForeignKey(
        "submissions.Submission", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progressed_at = models.DateTimeField(
        auto_now_add=True,
        help_text="Last sign of life: creation, claim or one more submission evaluated. An active job silent for "
        "longer than SPINEBENCH_SCORING_LEASE_SECONDS lost its worker; the next re-score of the phase fails it.",
    )

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"re-score of {self.phase} to version {self.to_version} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def progress(self) -> float:
        """Share of the submissions evaluated, 0 to 1 (1 for a phase without any)."""
        return self.scored / self.total if self.total else (1.0 if not self.is_active else 0.0)


class StagedScore(models.Model):
    """A re-score's result for one submission, held apart until the whole phase switches (never shown)."""

    job = models.ForeignKey(RescoreJob, on_delete=models.CASCADE, related_name="staged_scores")
    submission = models.ForeignKey("submissions.Submission", on_delete=models.CASCADE, related_name="+")
    metrics = models.JSONField(help_text='{"case": {...}, "aggregates": {...}} (of the public part on a split phase)')
    curves = models.JSONField(default=dict, blank=True)
    private_metrics = models.JSONField(
        null=True, blank=True, help_text="A split phase's private part, scored in the same run (empty otherwise)."
    )
    private_curves = models.JSONField(default=dict, blank=True)
    duration_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "submission"], name="one_staged_score_per_submission")]

    def __str__(self) -> str:
        return f"staged score of submission {self.submission_id} for re-score job {self.job_id}"


class PastEvaluation(models.Model):
    """An evaluation a re-score replaced: what the submission scored under an earlier version of its phase's
    evaluation, and its rank then."""

    submission = models.ForeignKey(
        "submissions.Submission", on_delete=models.CASCADE, related_name="past_evaluations"
    )
    version = models.PositiveIntegerField()
    part = models.CharField(
        max_length=16, choices=Part.choices, default=Part.ALL,
        help_text="The test cases it scored: all, or the public or private part of a split phase.",
    )
    metrics = models.JSONField()
    curves = models.JSONField(default=dict, blank=True)
    duration_seconds = models.FloatField(default=0.0)
    rank = models.PositiveIntegerField(null=True, blank=True)
    evaluated = models.DateTimeField(help_text="When this evaluation was made.")
    replaced = models.DateTimeField(auto_now_add=True, help_text="When a re-score replaced it.")
    replaced_by = models.ForeignKey(RescoreJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["submission_id", "-version", "part"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "version", "part"], name="one_past_evaluation_per_part")
        ]

    def __str__(self) -> str:
        return f"version {self.version} evaluation ({self.part}) of submission {self.submission_id}"

    @property
    def aggregates(self) -> dict:
        return self.metrics.get("aggregates", {})
