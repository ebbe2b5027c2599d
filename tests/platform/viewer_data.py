"""Phases and scored submissions for the CT and labelling viewer tests (platform and browser): small generated
phantoms, a training phase whose labels are public and a test phase whose labels are hidden, each with one
participant's submission scored in-process."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from spinebench.datasets.services import register_dataset
from spinebench.submissions.services import create_submission

from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory

#: Voxels the predicted segmentation is moved along x, so its outline differs from the reference's.
SHIFT = 3
#: labelling: the vertebra moved 30 mm (missed: too far) and the one left out (missed: not predicted).
MOVED, DROPPED = "T1", "T2"


def _dataset(challenge, task: str, split: str):
    import phantoms

    folder = phantoms.generate(
        task,
        out=Path(settings.DATASETS_ROOT) / challenge.slug / split,
        cases=2,
        seed=5,
        domain=split,
        small=True,
        progress=False,
    )
    return register_dataset(challenge=challenge, slug=split, folder=folder)


def segmentation_zip(dataset) -> SimpleUploadedFile:
    """Each case's reference moved SHIFT voxels along x, in the reference's geometry."""
    import SimpleITK as sitk

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for case_id in dataset.case_ids():
            reference = sitk.ReadImage(str(dataset.root / "ground_truth" / f"{case_id}.nii.gz"))
            moved = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(reference), SHIFT, axis=2))
            moved.CopyInformation(reference)
            path = Path(settings.MEDIA_ROOT) / f"viewer-{case_id}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(moved, str(path))
            archive.write(path, f"{case_id}/segmentation.nii.gz")
    return SimpleUploadedFile("p.zip", buffer.getvalue(), content_type="application/zip")


def fracture_probability(grade: int) -> float:
    return round(0.2 * grade + 0.05, 2)


def fracture_csv(dataset) -> SimpleUploadedFile:
    rows = ["case_id,vertebra,probability"]
    with (dataset.root / "ground_truth" / "vertebrae.csv").open(encoding="utf-8", newline="") as handle:
        rows += [
            f"{r['case_id']},{r['vertebra']},{fracture_probability(int(r['grade']))}" for r in csv.DictReader(handle)
        ]
    return SimpleUploadedFile("p.csv", ("\n".join(rows) + "\n").encode(), content_type="text/csv")


def labelling_csv(dataset) -> SimpleUploadedFile:
    """The reference centroids, except MOVED 30 mm to the right and DROPPED left out."""
    rows = ["case_id,vertebra,x,y"]
    for case_id in dataset.case_ids():
        centroids = json.loads((dataset.root / "ground_truth" / f"{case_id}.json").read_text())["centroids"]
        for name, (x, y) in centroids.items():
            if name == DROPPED:
                continue
            rows.append(f"{case_id},{name},{x + (30.0 if name == MOVED else 0.0)},{y}")
    return SimpleUploadedFile("p.csv", ("\n".join(rows) + "\n").encode(), content_type="text/csv")


UPLOADS = {
    "metastatic-body-ct": segmentation_zip,
    "lumbosacral-ct": segmentation_zip,
    "fracture-ct": fracture_csv,
    "vertebra-labelling-xr": labelling_csv,
}


def viewer_world(task: str, capture=None) -> dict:
    """{"challenge", "participant", "training", "test"}: the two phases' succeeded submissions by the participant.
    `capture` is pytest-django's django_capture_on_commit_callbacks (the scoring task runs at commit); leave it out
    in transactional tests, where commit callbacks run at once."""
    challenge = ChallengeFactory()
    train, test = _dataset(challenge, task, "train"), _dataset(challenge, task, "test")
    participant = RegistrationFactory(challenge=challenge).user
    world = {"challenge": challenge, "participant": participant}
    for slug, dataset in (("training", train), ("test", test)):
        phase = PhaseFactory(
            challenge=challenge,
            slug=slug,
            task=task,
            dataset=dataset,
            training_dataset=train,
            extra_metrics=[],
            show_case_results=True,
            max_upload_bytes=50 * 1024**2,
        )
        with capture(execute=True) if capture else contextlib.nullcontext():
            submission = create_submission(phase=phase, user=participant, upload=UPLOADS[task](dataset))
        submission.refresh_from_db()
        assert submission.status == "succeeded", submission.error_message
        world[slug] = submission
    return world
