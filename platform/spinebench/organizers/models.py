"""The organizers app's models: the audit trail of organizer actions."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One action of an organizer (or a site operator) on a challenge: who, when, what, on which object, and for an
    edit the fields that changed with their values before and after. Never edited or deleted through the site."""

    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="The actor's username when it acted (kept if deleted).")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="field → [before, after]")
    note = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created", "-pk")

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target}".strip()


class BundleImport(models.Model):
    """One challenge bundle (a zip with challenge.yaml) uploaded through the site or the API, imported in the
    background under the untrusted profile. The uploader follows its progress; a failure leaves no challenge, phase
    or dataset row behind and says why."""

    class Status(models.TextChoices):
        QUEUED = "queued", "waiting for a worker"
        RUNNING = "running", "importing"
        SUCCEEDED = "succeeded", "imported"
        FAILED = "failed", "failed"

    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    archive = models.CharField(max_length=255, help_text="Storage name of the uploaded zip (spinebench.uploads).")
    original_name = models.CharField(max_length=255, blank=True)
    slug = models.SlugField(help_text="The challenge slug the bundle names.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=200, blank=True, help_text="What the job is doing now, in words.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    error = models.TextField(blank=True, help_text="Why the import failed (key-exact for bundle errors).")
    challenge = models.ForeignKey(
        "challenges.Challenge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created", "-pk")

    def __str__(self) -> str:
        return f"import of {self.slug} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class DatasetUpload(models.Model):
    """A dataset zip an organizer uploaded for a challenge (console or API), checked by a background job: unpacked
    with the uploads app's bounded reader, converted by an importer when it is a public layout, and checked
    (spinebench.datasets.checks). A ready upload holds its dataset folder and the report; the Dataset row is made
    when the organizer first attaches it to a phase. A failed one says why and left no folder and no dataset row."""

    SPINEBENCH_LAYOUT = "spinebench"

    class Status(models.TextChoices):
        QUEUED = "queued", "waiting for a worker"
        RUNNING = "running", "checking"
        READY = "ready", "checked"
        FAILED = "failed", "failed"

    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="dataset_uploads")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archive = models.CharField(max_length=300, help_text="Storage name of the uploaded zip (spinebench.uploads).")
    original_name = models.CharField(max_length=255, blank=True)
    slug = models.SlugField(help_text="The dataset's name inside its challenge.")
    title = models.CharField(max_length=200, blank=True)
    layout = models.CharField(
        max_length=32, default=SPINEBENCH_LAYOUT,
        help_text="`spinebench` (dataset.json, inputs/, ground_truth/) or a public layout phantoms.importers reads.",
    )
    task = models.CharField(max_length=64, blank=True, help_text="The task the uploader named (public layouts).")
    split = models.CharField(max_length=8, blank=True, help_text="The split the uploader named (public layouts).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=200, blank=True, help_text="What the job is doing now, in words.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    error = models.TextField(blank=True, help_text="Why the check failed: the file and what was expected.")
    report = models.JSONField(default=dict, blank=True, help_text="What the check found (spinebench.datasets.checks).")
    folder = models.CharField(max_length=500, blank=True, help_text="The checked dataset folder under DATASETS_ROOT.")
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The Dataset made from it when first attached to a phase.",
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True, help_text="When a worker began the check.")
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created", "-pk")

    def __str__(self) -> str:
        return f"dataset upload {self.slug} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)
