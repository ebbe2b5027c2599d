"""Phases of tasks whose predictions are files per case take a zip of case folders; it is checked before scoring."""

import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from spinebench.challenges.models import Phase
from spinebench.datasets.services import link_phase_datasets, register_dataset
from spinebench.submissions.services import create_submission

from .factories import ChallengeFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def metastatic_phase():
    import phantoms

    challenge = ChallengeFactory()
    folder = phantoms.generate("metastatic-body-ct", out=Path(settings.DATASETS_ROOT) / challenge.slug / "test",
                               cases=1, seed=3, domain="test", small=True, progress=False)
    dataset = register_dataset(challenge=challenge, slug="test", folder=folder)
    phase = Phase.objects.create(
        challenge=challenge, slug="test", title="Test", task="metastatic-body-ct", max_upload_bytes=50 * 1024**2
    )
    link_phase_datasets(phase=phase, dataset=dataset)
    return phase


def zipped(files: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return SimpleUploadedFile("predictions.zip", buffer.getvalue(), content_type="application/zip")


def test_perfect_zip_scores_dice_one_per_group(metastatic_phase, eager_tasks, django_capture_on_commit_callbacks):
    gt = metastatic_phase.dataset.ground_truth_dir
    files = {
        f"{case}/segmentation.nii.gz": (gt / f"{case}.nii.gz").read_bytes()
        for case in metastatic_phase.dataset.case_ids()
    }
    user = RegistrationFactory(challenge=metastatic_phase.challenge).user
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(phase=metastatic_phase, user=user, upload=zipped(files))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    aggregates = submission.evaluation.aggregates
    assert aggregates["dice"] == pytest.approx(1.0)
    assert {key for key in aggregates if key.startswith("dice@")} == {
        "dice@given", "dice@translated", "dice@resampled", "dice@translated+resampled"}


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("p.zip", b"not a zip"), "not a zip archive"),
        (zipped({"../escape/segmentation.nii.gz": b"x"}), "points outside the archive"),
        (zipped({}), "the archive is empty"),
    ],
)
def test_bad_zips_are_refused_with_the_reason(metastatic_phase, upload, message):
    user = RegistrationFactory(challenge=metastatic_phase.challenge).user
    submission = create_submission(phase=metastatic_phase, user=user, upload=upload)
    assert submission.status == "failed" and message in submission.error_message


def test_missing_case_folder_is_named(metastatic_phase, eager_tasks, django_capture_on_commit_callbacks):
    user = RegistrationFactory(challenge=metastatic_phase.challenge).user
    first = metastatic_phase.dataset.case_ids()[0]
    gt = metastatic_phase.dataset.ground_truth_dir / f"{first}.nii.gz"
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(
            phase=metastatic_phase, user=user, upload=zipped({f"{first}/segmentation.nii.gz": gt.read_bytes()})
        )
    submission.refresh_from_db()
    assert submission.status == "failed" and "no prediction for case(s)" in submission.error_message
