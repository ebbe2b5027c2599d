"""Organizers' evaluation images and the metric declaration of a custom phase.

A phase scored by its own evaluation image has the task `custom` (challenges.registry) and declares here what the
image reports: `DeclaredMetric` rows (key, label, direction, primary, per-case or aggregate) and one
`CustomEvaluation` row (the format of the predictions, what an algorithm writes, the image in use). An
`EvaluationImage` is a validated `docker save` archive, known by its image id (the digest of its config): the
archive is loaded into a container worker's engine without any tag and run by that id only. Each scoring run of an
image leaves an `EvaluationImageRun`: what the organizers see when it failed (the participant sees only that the
evaluation failed, on phases whose test data are hidden)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from evaluators.contract import METRIC_KEY, Declaration
from evaluators.contract import DeclaredMetric as ContractMetric


class EvaluationImage(models.Model):
    """One uploaded evaluation image of a phase. Uploading the same image again (same id) reuses its row."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="evaluation_images")
    image_id = models.CharField(max_length=71, help_text="sha256:<digest of the image config> (Docker's image id).")
    archive = models.CharField(max_length=300, help_text="Name of the validated archive in the default storage.")
    archive_sha256 = models.CharField(max_length=64, help_text="sha256 of the uploaded archive.")
    size_bytes = models.PositiveBigIntegerField(help_text="Uncompressed size of the archive's members.")
    user = models.CharField(max_length=128, help_text="The image's USER (never root).")
    uid = models.PositiveIntegerField(help_text="The USER resolved through the image's /etc/passwd (never 0).")
    gid = models.PositiveIntegerField(help_text="The USER's group, resolved (never 0).")
    repo_tags = models.JSONField(default=list, blank=True, help_text="The archive's tags, for information only.")
    validation = models.JSONField(default=list, blank=True, help_text="[[check, passed, message], ...]")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="evaluation_images")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]
        constraints = [models.UniqueConstraint(fields=["phase", "image_id"], name="evaluation_image_once_per_phase")]

    def __str__(self) -> str:
        return f"evaluation image {self.image_id[:19]} of {self.phase}"


class CustomEvaluation(models.Model):
    """How a custom phase is evaluated: the image in use and the shape of what it is given."""

    class PredictionsFormat(models.TextChoices):
        CSV = "csv", "one CSV file per submission (/input/predictions.csv)"
        CASE_FOLDER = "case-folder", "a zip of case folders (/input/<case_id>/<file>)"

    phase = models.OneToOneField("challenges.Phase", on_delete=models.CASCADE, related_name="custom_evaluation")
    image = models.ForeignKey(EvaluationImage, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              help_text="The image that scores new submissions (the latest upload).")
    predictions_format = models.CharField(
        max_length=16, choices=PredictionsFormat.choices, default=PredictionsFormat.CSV,
        help_text="What participants of a predictions phase upload.",
    )
    output_files = models.JSONField(
        default=list, blank=True,
        help_text='Files an algorithm container of the phase may write to /output (algorithm phases), e.g. '
        '["prediction.json"].',
    )
    image_size_limit_mb = models.PositiveIntegerField(
        default=4096, validators=[MinValueValidator(1)],
        help_text="Largest accepted evaluation image, uncompressed, in MiB.",
    )
    time_limit_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1)], help_text="Wall-clock limit of one evaluation run.",
    )

    def __str__(self) -> str:
        return f"custom evaluation of {self.phase}"


class DeclaredMetric(models.Model):
    """One metric a custom phase's image reports."""

    class Direction(models.TextChoices):
        HIGHER = "higher", "higher is better"
        LOWER = "lower", "lower is better"

    class Scope(models.TextChoices):
        CASE = "case", "per case (the leaderboard shows the mean over cases)"
        AGGREGATE = "aggregate", "set-level aggregate only"

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="declared_metrics")
    key = models.CharField(max_length=64, validators=[RegexValidator(METRIC_KEY.pattern)],
                           help_text="The key in metrics.json, e.g. mae.")
    label = models.CharField(max_length=120, help_text="Column title on the leaderboard.")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    primary = models.BooleanField(default=False, help_text="Ranks the leaderboard (exactly one metric is primary).")
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.CASE)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["phase", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["phase", "key"], name="declared_metric_key_unique_in_phase"),
            models.UniqueConstraint(fields=["phase"], condition=models.Q(primary=True),
                                    name="one_primary_declared_metric_per_phase"),
        ]

    def __str__(self) -> str:
        return f"{self.key} of {self.phase}"


class EvaluationImageRun(models.Model):
    """One run of an evaluation image on a submission's predictions."""

    submission = models.ForeignKey("submissions.Submission", on_delete=models.CASCADE,
                                   related_name="evaluation_image_runs")
    image = models.ForeignKey(EvaluationImage, on_delete=models.PROTECT, related_name="runs")
    succeeded = models.BooleanField(default=False)
    organizer_error = models.TextField(blank=True, help_text="Why the run failed, for the organizers only.")
    log_tail = models.TextField(blank=True, help_text="Last lines of the container's output (organizers only).")
    duration_seconds = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"run of {self.image} on submission {self.submission_id}"


def phase_declaration(phase) -> Declaration | None:
    """The contract's view of a phase's declaration, None while it declares no metric."""
    metrics = tuple(
        ContractMetric(key=m.key, label=m.label, direction=m.direction, primary=m.primary,
                       per_case=m.scope == DeclaredMetric.Scope.CASE)
        for m in DeclaredMetric.objects.filter(phase_id=phase.pk)
    )
    if not metrics:
        return None
    custom = CustomEvaluation.objects.filter(phase_id=phase.pk).first()
    return Declaration(
        metrics=metrics,
        predictions_format=custom.predictions_format if custom else CustomEvaluation.PredictionsFormat.CSV,
        output_files=tuple(custom.output_files) if custom else (),
    )
