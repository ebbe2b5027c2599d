"""A Dataset is one SpineBench dataset folder (docs/formats.md) under DATASETS_ROOT; a Case is one of its cases;
PhaseDatasets says which datasets a phase scores against and offers for download. The link lives here, not on
`challenges.Phase`, because challenges sits below datasets in the app order (docs/architecture.md): a phase reads its
datasets through the reverse accessor (`phase.dataset`, `phase.training_dataset` are properties over it)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from spinebench.challenges import registry


class Dataset(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "training (downloadable with labels)"
        TEST = "test", "test (ground truth hidden)"

    challenge = models.ForeignKey(
        "challenges.Challenge", on_delete=models.CASCADE, related_name="datasets", null=True, blank=True,
    )
    slug = models.SlugField(help_text="Name of the dataset inside its challenge, e.g. train or test.")
    title = models.CharField(max_length=200, blank=True)
    task = models.CharField(max_length=64, validators=[registry.validate_task_id], help_text="Task id of the dataset.")
    split = models.CharField(max_length=8, choices=Split.choices)
    path = models.CharField(
        max_length=500, help_text="Folder of the dataset relative to DATASETS_ROOT (never served as is).",
    )
    source = models.CharField(max_length=32, blank=True, help_text="generated | real-anatomy | imported")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["challenge", "slug"]
        constraints = [models.UniqueConstraint(fields=["challenge", "slug"], name="dataset_slug_unique_in_challenge")]

    def __str__(self) -> str:
        prefix = f"{self.challenge.slug}/" if self.challenge is not None else ""
        return f"{prefix}{self.slug} ({self.split})"

    @property
    def root(self) -> Path:
        return Path(settings.DATASETS_ROOT) / self.path

    @property
    def ground_truth_dir(self) -> Path:
        from evaluators.layout import ground_truth_dir

        return ground_truth_dir(self.root)

    @property
    def is_hidden(self) -> bool:
        """Ground truth of a test split never leaves the platform."""
        return self.split == self.Split.TEST

    def exists(self) -> bool:
        return (self.root / "dataset.json").is_file()

    def groups(self) -> dict[str, str]:
        return {case.case_id: case.group for case in self.cases.all() if case.group}

    def case_ids(self) -> list[str]:
        return list(self.cases.values_list("case_id", flat=True))


class Case(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="cases")
    case_id = models.CharField(max_length=128)
    group = models.CharField(max_length=64, blank=True, help_text="Leaderboard group (docs/formats.md), if any.")

    class Meta:
        ordering = ["dataset", "case_id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "case_id"], name="case_id_unique_in_dataset")]

    def __str__(self) -> str:
        return self.case_id

    @property
    def input_dir(self) -> Path:
        from evaluators.layout import case_input_dir

        return case_input_dir(self.dataset.root, self.case_id)


class PhaseDatasets(models.Model):
    """The datasets of one phase: the one its submissions are scored against and the training split its
    participants may download. A phase without this row has neither."""

    phase = models.OneToOneField("challenges.Phase", on_delete=models.CASCADE, related_name="dataset_link")
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="scored_phase_links", null=True, blank=True,
        help_text="The dataset submissions are scored against. A test split's ground truth is never served.",
    )
    training_dataset = models.ForeignKey(
        Dataset, on_delete=models.SET_NULL, related_name="training_phase_links", null=True, blank=True,
        help_text="A training split participants of this phase may download, labels included.",
    )

    class Meta:
        verbose_name = "phase datasets"
        verbose_name_plural = "phase datasets"

    def __str__(self) -> str:
        return f"datasets of {self.phase}"

    def clean(self) -> None:
        """Both datasets are of the phase's task (any task for a custom phase, which its evaluation image scores);
        only a train split is offered for download."""
        super().clean()
        for field, dataset in (("dataset", self.dataset), ("training_dataset", self.training_dataset)):
            if dataset is not None and dataset.task != self.phase.task and self.phase.task != registry.CUSTOM_TASK:
                raise ValidationError(
                    {field: f"dataset {dataset} is for task {dataset.task!r}, the phase's task is {self.phase.task!r}"}
                )
        if self.training_dataset is not None and self.training_dataset.split != Dataset.Split.TRAIN:
            raise ValidationError({"training_dataset": "only a train split can be offered for download"})
