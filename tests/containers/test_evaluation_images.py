"""Organizers' evaluation images with the real engine: an organizer declares the metrics of a toy task that exists
only in containers/example-evaluation, uploads the image through the API, participants submit and the leaderboard
ranks them by the image's metrics (checked against metrics computed here, independently). A failing image, a
metrics.json that breaks the declaration and hostile images end the submission failed with the detail for the
organizers only; nothing can write to the ground truth."""

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from spinebench.algorithms import runner
from spinebench.algorithms.evaluation_images import HIDDEN_FAILURE
from spinebench.algorithms.trusted_images import recorded_image
from spinebench.datasets.services import link_phase_datasets
from spinebench.evaluation.images import EvaluationImageRun
from spinebench.submissions.models import Submission

from .conftest import managed_containers, output_mounts

pytestmark = [pytest.mark.django_db, pytest.mark.docker]

EXAMPLE_EVALUATION = "spinebench/example-evaluation:latest"
TRUTH = {"s1": 400.0, "s2": 450.0, "s3": 520.0}
DECLARATION = {
    "metrics": [
        {"key": "abs_error", "label": "Absolute error (mm)", "direction": "lower", "primary": True, "scope": "case"},
        {"key": "rel_error", "label": "Relative error", "direction": "lower", "primary": False, "scope": "case"},
        {"key": "within_10mm", "label": "Within 10 mm", "direction": "higher", "primary": False,
         "scope": "aggregate"},
    ],
    "predictions_format": "csv",
}


def lengths_csv(lengths: dict[str, float]) -> bytes:
    return ("case_id,length_mm\n" + "".join(f"{case},{value}\n" for case, value in lengths.items())).encode()


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def custom_phase(db, settings):
    """A hidden test split of the toy task (ground truth lengths.csv, world-writable so that only the read-only
    mount keeps an image from changing it), a CSV phase of task `custom`, its organizer and two participants."""
    from django.contrib.auth import get_user_model

    from evaluators.layout import CaseEntry, Manifest, write_manifest
    from spinebench.challenges.models import Challenge, Phase, Registration
    from spinebench.datasets.services import register_dataset

    challenge = Challenge.objects.create(slug="spine-length", title="Spine length")
    folder = Path(settings.DATASETS_ROOT) / challenge.slug / "test"
    shutil.rmtree(folder, ignore_errors=True)  # DATASETS_ROOT lives as long as the test session
    (folder / "ground_truth").mkdir(parents=True)
    (folder / "ground_truth" / "lengths.csv").write_bytes(lengths_csv(TRUTH))
    write_manifest(folder, Manifest(task="custom", split="test", domain="test",
                                    cases=tuple(CaseEntry(id=case) for case in TRUTH), seed=None))
    for path in [folder, folder / "ground_truth", *folder.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    dataset = register_dataset(challenge=challenge, slug="test", folder=folder)
    phase = Phase.objects.create(challenge=challenge, slug="test", title="Test", task="custom",
                                 submission_limit=None, memory_limit_mb=256, pids_limit=64)
    link_phase_datasets(phase=phase, dataset=dataset)
    users = get_user_model().objects
    organizer = users.create_user("length-organizer", password="correct-horse-battery")
    challenge.organizers.add(organizer)
    participants = [users.create_user(f"length-{name}", password="correct-horse-battery") for name in ("ana", "ben")]
    for user in participants:
        Registration.objects.create(challenge=challenge, user=user, status=Registration.Status.APPROVED)
    phase.organizer, phase.participants, phase.ground_truth = organizer, participants, folder / "ground_truth"
    return phase


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def upload_image(phase, archive: Path, capture) -> dict:
    with capture(execute=True), open(archive, "rb") as handle:
        response = api_for(phase.organizer).post(f"/api/phases/{phase.pk}/evaluation-images/", {"archive": handle},
                                                 format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def submit(phase, user, lengths: dict[str, float], capture) -> Submission:
    upload = SimpleUploadedFile("lengths.csv", lengths_csv(lengths), content_type="text/csv")
    with capture(execute=True):
        response = api_for(user).post(f"/api/phases/{phase.pk}/submissions/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    return Submission.objects.get(pk=response.json()["id"])


def declare(phase, declaration: dict) -> None:
    response = api_for(phase.organizer).put(f"/api/phases/{phase.pk}/metric-declaration/", declaration,
                                            format="json")
    assert response.status_code == 200, response.content


def test_organizer_image_scores_and_ranks_a_toy_task(custom_phase, saved_images, eager_tasks,
                                                     django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    declare(custom_phase, DECLARATION)
    listing = upload_image(custom_phase, saved_images(EXAMPLE_EVALUATION), capture)
    assert listing["current"] == recorded_image(runner.docker_client(), EXAMPLE_EVALUATION)
    custom_phase.refresh_from_db()
    assert custom_phase.task == "custom" and custom_phase.ranking_metric == "abs_error"
    ana, ben = custom_phase.participants
    predictions = {
        ana: {"s1": 404.0, "s2": 447.0, "s3": 530.0},  # errors 4, 3, 10
        ben: {"s1": 380.0, "s2": 452.0, "s3": 519.0},  # errors 20, 2, 1
    }
    submissions = {user: submit(custom_phase, user, lengths, capture) for user, lengths in predictions.items()}
    for user, submission in submissions.items():
        submission.refresh_from_db()
        assert submission.status == "succeeded", submission.error_message
        errors = {case: abs(predictions[user][case] - TRUTH[case]) for case in TRUTH}
        aggregates = submission.evaluation.aggregates
        assert aggregates["abs_error"] == pytest.approx(sum(errors.values()) / 3, abs=1e-9)
        assert aggregates["rel_error"] == pytest.approx(sum(errors[c] / TRUTH[c] for c in TRUTH) / 3, abs=1e-9)
        assert aggregates["within_10mm"] == pytest.approx(sum(e <= 10 for e in errors.values()) / 3)
        assert submission.evaluation.metrics["case"]["s1"]["abs_error"] == pytest.approx(errors["s1"])
    board = api_for(ana).get(f"/api/phases/{custom_phase.pk}/leaderboard/").json()
    assert board["metrics"] == ["abs_error", "rel_error", "within_10mm"]
    # ana: mean abs error 17/3; ben: 23/3; lower is better, as declared
    assert [(row["rank"], row["submission"]) for row in board["rows"]] == [
        (1, submissions[ana].pk), (2, submissions[ben].pk)]
    assert EvaluationImageRun.objects.filter(succeeded=True).count() == 2
    assert managed_containers(runner.docker_client()) == [] and output_mounts() == []

    # The image refuses predictions that miss a case: the participant of this hidden phase sees only that the
    # evaluation failed; the organizers see why, and the log.
    failed = submit(custom_phase, ana, {"s1": 400.0, "s2": 450.0}, capture)
    failed.refresh_from_db()
    assert failed.status == "failed" and failed.error_message == HIDDEN_FAILURE
    run = EvaluationImageRun.objects.get(submission=failed)
    assert run.organizer_error == "the evaluation image exited with code 2"
    assert "1 cases missing" in run.log_tail
    page = api_for(ana).get(f"/api/submissions/{failed.pk}/").content.decode()
    assert "cases missing" not in page and "exited with code" not in page
    listing = api_for(custom_phase.organizer).get(f"/api/phases/{custom_phase.pk}/evaluation-images/").json()
    assert listing["runs"][0]["organizer_error"] == "the evaluation image exited with code 2"

    # A declaration the image does not fulfil: a clear error for the organizer, "failed" for the participant.
    declare(custom_phase, {**DECLARATION, "metrics": [*DECLARATION["metrics"], {
        "key": "dice", "label": "Dice", "direction": "higher", "primary": False, "scope": "aggregate"}]})
    breach = submit(custom_phase, ben, predictions[ben], capture)
    breach.refresh_from_db()
    assert breach.status == "failed" and breach.error_message == HIDDEN_FAILURE
    assert EvaluationImageRun.objects.get(submission=breach).organizer_error == (
        "metrics.json breaks the contract: metrics.json has no aggregate 'dice'")


def test_refused_archive_keeps_nothing(custom_phase, tmp_path, django_capture_on_commit_callbacks):
    from spinebench.evaluation.images import EvaluationImage
    from spinebench.uploads.models import StoredUpload

    from .test_archives import write_archive

    api = api_for(custom_phase.organizer)
    write_archive(tmp_path / "root.tar", user="")
    with open(tmp_path / "root.tar", "rb") as handle:
        response = api.post(f"/api/phases/{custom_phase.pk}/evaluation-images/", {"archive": handle},
                            format="multipart")
    assert response.status_code == 400
    assert "declare the metrics" in response.json()["archive"][0].lower()
    declare(custom_phase, DECLARATION)
    with django_capture_on_commit_callbacks(execute=True), open(tmp_path / "root.tar", "rb") as handle:
        response = api.post(f"/api/phases/{custom_phase.pk}/evaluation-images/", {"archive": handle},
                            format="multipart")
    assert response.status_code == 400
    assert response.json()["archive"][0].startswith("Archive refused: the image runs as root")
    assert not EvaluationImage.objects.exists() and not StoredUpload.objects.exists()


GROUND_TRUTH_WRITER = '''
import os, pathlib
targets = ["/opt/ml/input/data/ground_truth/lengths.csv", "/opt/ml/input/data/ground_truth/new.csv",
           "/opt/ml/input/data/dataset.json", "/input/predictions.csv", "/input/pwned"]
for target in targets:
    try:
        with open(target, "a") as handle:
            handle.write("0,0\\n")
        print("wrote", target)
    except OSError as error:
        print("refused", target, error.strerror)
for target in targets[:1]:
    try:
        os.remove(target)
        print("removed", target)
    except OSError as error:
        print("refused removing", target, error.strerror)
'''


@pytest.fixture
def ground_truth_writer(built_images, tmp_path):
    """`docker save` of an image FROM the base that tries to change the ground truth, the manifest and /input."""
    client = built_images
    context = tmp_path / "writer"
    context.mkdir()
    (context / "writer.py").write_text(GROUND_TRUTH_WRITER)
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY writer.py /writer.py\n"
                                        "USER algorithm\nENTRYPOINT [\"python3\", \"/writer.py\"]\n")
    tag = f"spinebench-test/ground-truth-writer:{uuid.uuid4().hex[:12]}"
    image, _ = client.images.build(path=str(context), tag=tag, rm=True,
                                   buildargs={"BASE_IMAGE": recorded_image(client, "spinebench/base:latest")})
    archive = tmp_path / "writer.tar"
    with open(archive, "wb") as sink:
        for chunk in image.save(named=False):
            sink.write(chunk)
    client.images.remove(image.id, force=True)  # the upload loads it again, by id
    yield archive
    shutil.rmtree(context, ignore_errors=True)
    try:
        client.images.remove(image.id, force=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


@pytest.mark.parametrize("hostile", ["symlink-output", "memory-hog", "ground-truth-writer"])
def test_hostile_evaluation_images_are_contained(custom_phase, saved_images, hostile, request, eager_tasks,
                                                 django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    archive = (request.getfixturevalue("ground_truth_writer") if hostile == "ground-truth-writer"
               else saved_images(f"spinebench/hostile-{hostile}:latest"))
    before = tree_digest(custom_phase.ground_truth.parent)
    declare(custom_phase, DECLARATION)
    upload_image(custom_phase, archive, capture)
    submission = submit(custom_phase, custom_phase.participants[0], TRUTH, capture)
    submission.refresh_from_db()
    assert submission.status == "failed" and submission.error_message == HIDDEN_FAILURE
    run = EvaluationImageRun.objects.get(submission=submission)
    expected = {
        "symlink-output": "/output/angles.json is a symbolic link; links are refused, never followed",
        "memory-hog": "the evaluation image ran out of memory (limit 256 MiB, swap included) and was killed",
        "ground-truth-writer": "the evaluation image wrote none of metrics.json to /output",
    }[hostile]
    assert run.organizer_error == expected
    if hostile == "ground-truth-writer":
        assert "wrote" not in run.log_tail and "removed" not in run.log_tail
        assert run.log_tail.count("refused") == 6 and "Read-only file system" in run.log_tail
    assert tree_digest(custom_phase.ground_truth.parent) == before
    assert managed_containers(runner.docker_client()) == [] and output_mounts() == []
    assert json.loads((custom_phase.ground_truth.parent / "dataset.json").read_text())["task"] == "custom"


@pytest.fixture
def evaluator_for_aasce(built_images, tmp_path):
    """`docker save` of what an organizer builds to score a built-in task through the custom path: the evaluator
    image with the task as its command."""
    client = built_images
    context = tmp_path / "aasce-evaluation"
    context.mkdir()
    (context / "Dockerfile").write_text('ARG EVALUATOR\nFROM ${EVALUATOR}\nCMD ["aasce-cobb"]\n')
    image, _ = client.images.build(
        path=str(context), tag=f"spinebench-test/aasce-evaluation:{uuid.uuid4().hex[:12]}", rm=True,
        buildargs={"EVALUATOR": recorded_image(client, "spinebench/evaluator:latest")})
    archive = tmp_path / "aasce-evaluation.tar"
    with open(archive, "wb") as sink:
        for chunk in image.save(named=False):
            sink.write(chunk)
    yield archive
    try:
        client.images.remove(image.id, force=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


def test_algorithm_phase_scored_by_an_image_matches_the_built_in_scoring(
    algorithm_phase, algorithm_participant, algorithm_organizer, evaluator_for_aasce, saved_images, eager_tasks,
    django_capture_on_commit_callbacks,
):
    """The same algorithm on the same hidden test set: scored in-process by the built-in task, and by the evaluator
    image as the custom phase's evaluation (predictions handed over as the algorithm's outputs under /input)."""
    from django.core.files import File

    from spinebench.challenges.models import Phase
    from spinebench.evaluation.declarations import declare_metrics
    from spinebench.submissions.services import create_submission

    capture = django_capture_on_commit_callbacks
    custom = Phase.objects.create(
        challenge=algorithm_phase.challenge, slug="algorithm-custom", title="Algorithm, custom evaluation",
        task="custom", submission_kind=Phase.SubmissionKind.ALGORITHM,
        max_upload_bytes=2 << 30, case_time_limit_seconds=30, memory_limit_mb=512, cpu_limit=1.0, pids_limit=64,
        output_limit_mb=8, submission_limit=None)
    link_phase_datasets(phase=custom, dataset=algorithm_phase.dataset)
    keys = ["smape", "mae_pt", "mae_mt", "mae_tl"]
    declare_metrics(phase=custom, actor=algorithm_organizer, output_files=["angles.json"], metrics=[
        {"key": key, "label": key, "direction": "lower", "primary": key == "smape", "scope": "aggregate"}
        for key in keys])
    custom.organizer = algorithm_organizer
    upload_image(custom, evaluator_for_aasce, capture)
    scored = {}
    for phase in (algorithm_phase, custom):
        with capture(execute=True), open(saved_images("spinebench/example-algorithm:latest"), "rb") as handle:
            submission = create_submission(phase=phase, user=algorithm_participant,
                                           upload=File(handle, name="algorithm.tar"))
        submission.refresh_from_db()
        assert submission.status == "succeeded", submission.error_message
        scored[phase.task] = submission.evaluation.aggregates
    assert {key: scored["custom"][key] for key in keys} == {key: scored["aasce-cobb"][key] for key in keys}
    assert managed_containers(runner.docker_client()) == [] and output_mounts() == []


def test_a_split_custom_phase_runs_its_image_once_per_part(custom_phase, saved_images, eager_tasks,
                                                           django_capture_on_commit_callbacks):
    """The image runs on the public part and on the private part, each seeing only that part's predictions, ground
    truth and manifest (it would report the other part's cases otherwise, which the contract refuses)."""
    from spinebench.submissions.models import PrivateEvaluation

    capture = django_capture_on_commit_callbacks
    declare(custom_phase, DECLARATION)
    upload_image(custom_phase, saved_images(EXAMPLE_EVALUATION), capture)
    custom_phase.refresh_from_db()
    custom_phase.score_visibility, custom_phase.public_case_ids = "split", ["s1"]
    custom_phase.save()
    ana = custom_phase.participants[0]
    predictions = {"s1": 404.0, "s2": 447.0, "s3": 530.0}  # errors 4, 3, 10
    submission = submit(custom_phase, ana, predictions, capture)
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    public, private = submission.evaluation, PrivateEvaluation.objects.get(submission=submission)
    assert set(public.metrics["case"]) == {"s1"} and set(private.metrics["case"]) == {"s2", "s3"}
    assert public.aggregates["abs_error"] == pytest.approx(4.0)
    assert private.aggregates["abs_error"] == pytest.approx(6.5)
    assert private.aggregates["within_10mm"] == pytest.approx(1.0)
    assert EvaluationImageRun.objects.filter(submission=submission, succeeded=True).count() == 2
    assert managed_containers(runner.docker_client()) == [] and output_mounts() == []


def test_a_remote_worker_scores_a_custom_phase_through_the_worker_api(
        custom_phase, saved_images, transactional_db, live_server, tmp_path, django_capture_on_commit_callbacks,
        monkeypatch, eager_tasks):
    """The evaluation on a remote worker host: the claim stages the predictions and the ground truth and names them by
    signed URLs; the worker (here the test process, through the HTTP API only: no database, its own folder) runs
    the image on its engine and reports metrics.json; the site validates and scores. Same metrics as on the site's
    own workers (test above), the ground truth unchanged."""
    from spinebench.accounts.models import ApiToken
    from spinebench.accounts.tokens import issue_token
    from spinebench.algorithms.job_worker import run_remote_evaluation
    from spinebench.algorithms.remote_client import RemoteJobClient

    capture = django_capture_on_commit_callbacks
    declare(custom_phase, DECLARATION)
    upload_image(custom_phase, saved_images(EXAMPLE_EVALUATION), capture)
    truth_before = tree_digest(custom_phase.ground_truth)
    ana = custom_phase.participants[0]
    lengths = {"s1": 404.0, "s2": 447.0, "s3": 530.0}
    upload = SimpleUploadedFile("lengths.csv", lengths_csv(lengths), content_type="text/csv")
    from spinebench.submissions import services
    from spinebench.submissions.services import CUSTOM_EVALUATION_PIPELINE

    # Queued: its message goes nowhere here; the remote worker takes it below.
    monkeypatch.setitem(services._PIPELINES, CUSTOM_EVALUATION_PIPELINE, lambda pk: None)
    with capture(execute=True):
        response = api_for(ana).post(f"/api/phases/{custom_phase.pk}/submissions/", {"file": upload},
                                     format="multipart")
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.status == "queued"
    secret = issue_token(name="remote-evaluator", kind=ApiToken.Kind.WORKER).secret
    client = RemoteJobClient(server=live_server.url, token=secret, folder=tmp_path / "remote-host")
    outcome = run_remote_evaluation(client, submission.pk, engine=runner.docker_client())
    assert outcome == {"outcome": "scored"}, outcome
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    errors = {case: abs(lengths[case] - TRUTH[case]) for case in TRUTH}
    assert submission.evaluation.aggregates["abs_error"] == pytest.approx(sum(errors.values()) / 3, abs=1e-9)
    assert submission.evaluation.metrics["case"]["s3"]["abs_error"] == pytest.approx(errors["s3"])
    assert EvaluationImageRun.objects.filter(submission=submission, succeeded=True).count() == 1
    assert tree_digest(custom_phase.ground_truth) == truth_before
    # The worker kept nothing of the run, and a second report with the same ticket changes nothing.
    assert not list((tmp_path / "remote-host" / "media").rglob("lengths.csv"))
    assert run_remote_evaluation(client, submission.pk)["outcome"] == "nothing to do: succeeded"
    assert managed_containers(runner.docker_client()) == [] and output_mounts() == []
