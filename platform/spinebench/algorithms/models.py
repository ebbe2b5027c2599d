"""AlgorithmImage (a validated, loaded `docker save` archive), ContainerConfig (the container limits of a phase that
its Phase model does not already hold), AlgorithmRun (the container side of one submission) and Job (one container
run: one case, or every case in batch mode)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from spinebench.submissions.status import Status

from . import runner


class ContainerConfig(models.Model):
    """Per-phase container settings beyond the Phase's own limits (case time, memory, CPUs, pids, /output cap and
    GPU live on Phase; `limits()` combines both)."""

    class Mode(models.TextChoices):
        PER_CASE = "per-case", "one container per case (/input = the case folder)"
        BATCH = "batch", "one container for all cases (/input/<case_id>/, /output/<case_id>/)"

    phase = models.OneToOneField("challenges.Phase", on_delete=models.CASCADE, related_name="container_config")
    mode = models.CharField(
        max_length=16, choices=Mode.choices, default=Mode.PER_CASE,
        help_text="Run one container per test case, or one container over every case (its wall-clock limit is then "
        "the phase's per-case limit times the number of cases).",
    )
    image_size_limit_mb = models.PositiveIntegerField(
        default=4096, validators=[MinValueValidator(1)],
        help_text="Largest accepted image, uncompressed (the sum of its archive members) in MiB.",
    )
    tmp_limit_mb = models.PositiveIntegerField(
        default=64, validators=[MinValueValidator(1)], help_text="Size of the writable /tmp tmpfs in MiB.",
    )
    output_files_limit = models.PositiveIntegerField(
        default=256, validators=[MinValueValidator(1)], help_text="Most files an algorithm may create in /output.",
    )
    log_lines = models.PositiveIntegerField(
        default=50, validators=[MaxValueValidator(1000)],
        help_text="Last stdout/stderr lines kept per container run. Shown to the submitter only when the phase's "
        "dataset is not hidden; organizers always see them.",
    )

    def __str__(self) -> str:
        return f"container settings of {self.phase}"

    @classmethod
    def for_phase(cls, phase) -> ContainerConfig:
        config, _ = cls.objects.get_or_create(phase=phase)
        return config

    def limits(self, *, cases: int = 1) -> runner.Limits:
        phase = self.phase
        return runner.Limits(
            memory_mb=phase.memory_limit_mb,
            cpus=phase.cpu_limit,
            pids=phase.pids_limit,
            wall_clock_s=float(phase.case_time_limit_seconds * (cases if self.mode == self.Mode.BATCH else 1)),
            output_mb=phase.output_limit_mb,
            tmp_mb=self.tmp_limit_mb,
            output_files=self.output_files_limit,
            gpu=phase.requires_gpu,
            log_lines=self.log_lines,
        )


class AlgorithmImage(models.Model):
    """One image, identified by its config digest (Docker's image id): uploading the same image again finds this
    row instead of loading it twice."""

    image_id = models.CharField(max_length=71, unique=True, help_text="sha256:<digest of the image config>.")
    archive_sha256 = models.CharField(max_length=64, db_index=True, help_text="sha256 of the first uploaded archive.")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="algorithm_images")
    repo_tags = models.JSONField(default=list, blank=True)
    user = models.CharField(max_length=128, help_text="The image's USER (never root).")
    uid = models.PositiveIntegerField(null=True, blank=True,
                                      help_text="The USER resolved through the image's /etc/passwd (never 0); every "
                                      "container of the image runs with this explicit uid.")
    gid = models.PositiveIntegerField(null=True, blank=True, help_text="The USER's group, resolved (never 0).")
    architecture = models.CharField(max_length=32)
    os = models.CharField(max_length=32)
    size_bytes = models.PositiveBigIntegerField(help_text="Uncompressed size of the archive's members.")
    uploads = models.PositiveIntegerField(default=1, help_text="How many times this image was uploaded.")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.image_id[:19]


class AlgorithmRun(models.Model):
    """The container side of one algorithm submission: which image, the validation checks, and the lease a worker
    holds while it runs the jobs (a stale heartbeat means the worker died)."""

    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, related_name="algorithm_run")
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                           help_text="Names the run's folder: never shared with another run, even one whose submission "
                           "had the same id in another database.")
    image = models.ForeignKey(AlgorithmImage, on_delete=models.PROTECT, null=True, blank=True, related_name="runs")
    image_reused = models.BooleanField(default=False, help_text="The uploaded image was already known (same sha256).")
    validation = models.JSONField(default=list, blank=True, help_text="[[check, passed, message], ...]")
    worker = models.CharField(max_length=255, blank=True, help_text="Host and pid of the worker holding the run.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker started on this run.")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"algorithm run of submission {self.submission_id}"


class Job(models.Model):
    """One container run. Uses the platform's one status state machine: queued -> running -> scoring (reading
    /output) -> succeeded | failed | cancelled; running goes back to queued when its worker died."""

    run = models.ForeignKey(AlgorithmRun, on_delete=models.CASCADE, related_name="jobs")
    case_id = models.CharField(max_length=128, blank=True, help_text="The case (empty for a batch job).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    error_message = models.TextField(blank=True, help_text="Why the run failed (safe to show the submitter).")
    attempts = models.PositiveIntegerField(default=0)
    exit_code = models.IntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    log_tail = models.TextField(blank=True, help_text="Last stdout/stderr lines of the container.")

    class Meta:
        ordering = ["run", "case_id"]
        constraints = [models.UniqueConstraint(fields=["run", "case_id"], name="one_job_per_case")]

    def __str__(self) -> str:
        return f"job {self.case_id or 'batch'} of {self.run}"
