"""Submission (one upload, or one baseline run, for a phase) and its Evaluation (metrics.json + rank)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from .method_cards import validate_web_url
from .status import ACTIVE, Status

_UPLOAD_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".csv", ".zip")


def upload_suffix(filename: str) -> str:
    """The known suffix of an uploaded file name (the stored name keeps it so readers know the format), else ''."""
    return next((suffix for suffix in _UPLOAD_SUFFIXES if filename.lower().endswith(suffix)), "")


def submission_upload_path(submission: Submission, filename: str) -> str:
    # Never the participant's own file name in the path: no traversal, no collisions.
    return f"submissions/{submission.phase_id}/{uuid.uuid4().hex}{upload_suffix(filename)}"


class Submission(models.Model):
    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="submissions")
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="submissions",
        help_text="The participant (empty for a baseline run by the platform).",
    )
    team = models.ForeignKey(
        "teams.Team",
        on_delete=models.RESTRICT,  # a team stays while it has submissions (a cascade from above may take both)
        null=True,
        blank=True,
        related_name="submissions",
        help_text="The creator's team when it was made, or the team they joined afterwards (spinebench.teams): the "
        "team's one leaderboard entry and its submission limit.",
    )
    is_baseline = models.BooleanField(default=False, help_text="A reference method run by the platform.")
    baseline_method = models.CharField(max_length=64, blank=True, help_text="Method name in baselines.registry.")
    comment = models.CharField(max_length=500, blank=True)
    predictions_file = models.FileField(upload_to=submission_upload_path, blank=True, max_length=300)
    algorithm_archive = models.FileField(
        upload_to=submission_upload_path,
        blank=True,
        max_length=300,
        help_text="`docker save` archive of an algorithm phase submission (processed by spinebench.algorithms).",
    )
    upload_size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    error_message = models.TextField(blank=True, help_text="Shown to the submitter: never contains hidden data.")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When scoring (or running) started.")
    finished_at = models.DateTimeField(null=True, blank=True)
    fallback_share = models.FloatField(
        null=True,
        blank=True,
        help_text="Baselines: share of cases whose prediction came from a fallback (training mean, zeros, ...), "
        "not from the method's own output.",
    )
    degenerate_reason = models.TextField(
        blank=True,
        help_text="Baselines: why this run is degenerate (constant predictions, or fallbacks on more than half the "
        "cases). A degenerate run stays visible, greyed, but is not ranked as the method.",
    )
    # The method card: what the leaderboard shows of the method behind the submission.
    method_name = models.CharField(
        max_length=100, blank=True, help_text="Name of the method, shown on the leaderboard."
    )
    method_description = models.CharField(
        max_length=500, blank=True, help_text="A short description of the method (plain text)."
    )
    paper_url = models.URLField(
        max_length=500, blank=True, validators=[validate_web_url], help_text="Link to the paper (http or https)."
    )
    code_url = models.URLField(
        max_length=500, blank=True, validators=[validate_web_url], help_text="Link to the code (http or https)."
    )
    chosen = models.BooleanField(
        default=False,
        help_text="Picked by its participant to represent them on a phase whose selection is `chosen` (the best of "
        "the picked ones is ranked).",
    )
    hidden_from_leaderboard = models.BooleanField(
        default=False, help_text="An organizer took this submission off the leaderboard (see hidden_reason)."
    )
    hidden_reason = models.CharField(
        max_length=500, blank=True, help_text="Why an organizer hid the submission (shown to the submitter)."
    )
    rerun_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reruns",
        help_text="The submission whose upload an organizer ran again as this one (not counted against the limit).",
    )

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["phase", "creator", "created"])]

    def __str__(self) -> str:
        return f"submission {self.pk} to {self.phase} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("submissions:detail", kwargs={"pk": self.pk})

    @property
    def participant_key(self) -> str:
        """Who a leaderboard row belongs to: the team, else the user, or each baseline method separately."""
        if self.is_baseline:
            return f"baseline:{self.baseline_method}"
        return f"team:{self.team_id}" if self.team_id else f"user:{self.creator_id}"

    @property
    def participant_name(self) -> str:
        if self.is_baseline:
            return self.baseline_method
        if self.team is not None:
            return self.team.name
        return self.creator.get_username() if self.creator else "(deleted user)"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def is_degenerate(self) -> bool:
        return bool(self.degenerate_reason)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Part(models.TextChoices):
    """Which test cases an evaluation scored: all of them, or one part of a split phase's test set."""

    ALL = "all", "all test cases"
    PUBLIC = "public", "public part"
    PRIVATE = "private", "private part"


class Evaluation(models.Model):
    """A submission's current evaluation, the one participants see: on a split phase, of the public part only (the
    private part's is a PrivateEvaluation, which participants never read before the reveal)."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="evaluation")
    part = models.CharField(
        max_length=16, choices=[(Part.ALL.value, Part.ALL.label), (Part.PUBLIC.value, Part.PUBLIC.label)],
        default=Part.ALL, help_text="The test cases scored: all of them, or the public part of a split phase.",
    )
    metrics = models.JSONField(help_text='{"case": {case_id: {metric: value}}, "aggregates": {metric: value}}')
    curves = models.JSONField(
        default=dict,
        blank=True,
        help_text='metrics.json "curves" (fracture-ct ROC points per level: {level: {fpr, tpr, thresholds}}); drawn '
        "by spinebench.submissions.plots, never sent through the API.",
    )
    created = models.DateTimeField(auto_now_add=True)
    duration_seconds = models.FloatField(default=0.0, help_text="Time the evaluator took.")
    published = models.BooleanField(default=True, help_text="Shown on the phase leaderboard.")
    rank = models.PositiveIntegerField(null=True, blank=True, help_text="Leaderboard rank (empty: not ranked).")
    version = models.PositiveIntegerField(
        default=1,
        help_text="The phase's evaluation version that produced these scores (a re-score keeps the replaced ones in "
        "spinebench.evaluation's history).",
    )

    def __str__(self) -> str:
        return f"evaluation of submission {self.submission_id}"

    @property
    def aggregates(self) -> dict:
        return self.metrics.get("aggregates", {})

    @property
    def case_metrics(self) -> dict:
        return self.metrics.get("case", {})


class PrivateEvaluation(models.Model):
    """A split phase's submission scored on the private test cases, current under the phase's evaluation version
    (one per submission). Ranked on the final leaderboard; read only by its organizers until they reveal it, and
    its per-case values never reach a participant."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="private_evaluation")
    metrics = models.JSONField(help_text='{"case": {case_id: {metric: value}}, "aggregates": {metric: value}}')
    curves = models.JSONField(default=dict, blank=True, help_text='metrics.json "curves" of the private part.')
    created = models.DateTimeField(auto_now_add=True)
    duration_seconds = models.FloatField(default=0.0, help_text="Time the evaluator took on the private part.")
    rank = models.PositiveIntegerField(null=True, blank=True, help_text="Final leaderboard rank (empty: not ranked).")
    version = models.PositiveIntegerField(default=1, help_text="The phase's evaluation version that produced it.")

    def __str__(self) -> str:
        return f"private-part evaluation of submission {self.submission_id}"

    @property
    def aggregates(self) -> dict:
        return self.metrics.get("aggregates", {})


class BaselineRun(models.Model):
    """One background run of a registered baseline method for a phase: train (or reuse a checkpoint), predict the
    phase's inputs, submit the predictions. It moves through the one status machine (`status.py`):
    pending -> validating -> queued -> running -> (scoring) -> succeeded | failed | cancelled; `scoring` is the
    moment its predictions are handed to scoring, `succeeded` means they were submitted (the submission is then
    scored like any other)."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="baseline_runs")
    method = models.CharField(max_length=64, help_text="Method name in baselines.registry.")
    preset = models.CharField(
        max_length=32, default="tiny", help_text="Configuration preset (tiny | standard | paper)."
    )
    device = models.CharField(max_length=16, default="auto", help_text="auto, cpu or cuda[:N].")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    error_message = models.TextField(blank=True, help_text="Why the run failed (shown on the baselines page).")
    stage = models.CharField(max_length=32, blank=True, help_text="training | predicting | submitting")
    progress = models.FloatField(default=0.0, help_text="Share of the current stage done, 0 to 1.")
    lease_expires = models.DateTimeField(
        null=True, blank=True, help_text="A running run renews this; the sweep requeues a run whose lease expired."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker started this run.")
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    training_seconds = models.FloatField(null=True, blank=True, help_text="0 when a stored checkpoint was reused.")
    peak_memory_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Peak resident memory of the run."
    )
    submission = models.OneToOneField(
        Submission,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="baseline_run",
        help_text="The submission holding this run's predictions.",
    )

    class Meta:
        ordering = ["phase_id", "method", "-created"]

    def __str__(self) -> str:
        return f"baseline run {self.method} ({self.preset}) for {self.phase} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE
