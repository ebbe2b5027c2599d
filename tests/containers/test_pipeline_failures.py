"""The algorithm pipeline ends every submission it cannot run `failed`, with a clear reason, at once (M2): archives
whose JSON has the wrong shape, no container engine answering, an unexpected error; exit codes and per-case durations
are withheld from participants on hidden phases, in the page and the API; each run works in a folder of its own,
never one left by an earlier submission with the same id. No engine needed: where a container would run, the runner
is replaced by a stand-in that writes the predictions a container would."""

import json
import time

import pytest
from django.core.files import File
from django.urls import reverse
from rest_framework.test import APIClient

from spinebench.algorithms import execution, job_worker, local_client, runner
from spinebench.algorithms.models import AlgorithmRun
from spinebench.submissions.models import Submission
from spinebench.submissions.services import create_submission

from .archive_builders import write_archive

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def container_worker_alive(db):
    """A live container worker's heartbeat: with a broker configured (CI), uploads to an algorithm phase that no
    worker serves are refused before these tests' failures could happen."""
    from spinebench.workers.services import record_heartbeat

    record_heartbeat(hostname="containers@test", queues=["containers-cpu"])


def submit_file(phase, user, path, capture):
    with capture(execute=True), open(path, "rb") as handle:
        submission = create_submission(phase=phase, user=user, upload=File(handle, name=path.name))
    submission.refresh_from_db()
    return submission


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b'["not an object"]', "Archive refused: manifest.json has the wrong shape"),
        (
            b'[{"Config": ["x"], "Layers": []}]',
            "Archive refused: manifest.json has the wrong shape: Config is not a file",
        ),
        (b"{not json", "Archive refused: 'manifest.json' in the archive is not valid JSON"),
    ],
)
def test_archives_with_json_of_the_wrong_shape_fail_at_once(
    algorithm_phase, algorithm_participant, tmp_path, eager_tasks, django_capture_on_commit_callbacks, manifest, message
):
    write_archive(tmp_path / "bad.tar", manifest=manifest)
    submission = submit_file(
        algorithm_phase, algorithm_participant, tmp_path / "bad.tar", django_capture_on_commit_callbacks
    )
    assert submission.status == "failed" and submission.error_message.startswith(message), submission.error_message


def test_no_engine_fails_the_submission_at_once(
    algorithm_phase, algorithm_participant, tmp_path, eager_tasks, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    write_archive(tmp_path / "image.tar")
    started = time.monotonic()
    submission = submit_file(
        algorithm_phase, algorithm_participant, tmp_path / "image.tar", django_capture_on_commit_callbacks
    )
    assert time.monotonic() - started < 20
    assert submission.status == "failed" and submission.error_message == execution.NO_ENGINE
    assert submission.finished_at is not None


def test_an_unexpected_error_fails_the_submission(
    algorithm_phase, algorithm_participant, tmp_path, eager_tasks, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(execution, "inspect_archive", broken)
    write_archive(tmp_path / "image.tar")
    submission = submit_file(
        algorithm_phase, algorithm_participant, tmp_path / "image.tar", django_capture_on_commit_callbacks
    )
    assert submission.status == "failed" and submission.error_message == execution.INTERNAL_ERROR


class StandIn:
    """Replaces the engine: `load_image` succeeds, no container is listed, and run_algorithm writes `angles` for
    every case (or returns `result`), recording the calls it got."""

    def __init__(self, monkeypatch, *, angles=None, files=("angles.json",), result=None):
        self.angles, self.files, self.result, self.calls = angles or {}, files, result, []
        monkeypatch.setattr(job_worker, "load_image", lambda *args, **kwargs: "")
        monkeypatch.setattr(runner, "remove_managed_containers", lambda *args, **kwargs: 0)
        monkeypatch.setattr(runner, "run_algorithm", self.run)

    def run(self, **kwargs):
        self.calls.append(kwargs)
        if self.result is not None:
            return self.result
        case = kwargs["input_dir"].name
        kwargs["collect_to"].mkdir(parents=True, exist_ok=True)
        for name in self.files:
            content = {"angles": self.angles[case]} if name == "angles.json" else {"landmarks": [], "image_height": 1}
            (kwargs["collect_to"] / name).write_text(json.dumps(content))
        return runner.RunResult(True, exit_code=0, duration_s=0.5, files=list(self.files))


def test_exit_codes_and_durations_are_withheld_on_hidden_phases(
    algorithm_phase, algorithm_participant, algorithm_organizer, tmp_path, monkeypatch, client
):
    assert algorithm_phase.dataset.is_hidden
    stand_in = StandIn(
        monkeypatch, result=runner.RunResult(False, reason=runner.exit_code_reason(42), exit_code=42, duration_s=3.21)
    )
    # (42 and 3.2 are checked in the error message and the page; the API's timestamps may hold any digits)
    write_archive(tmp_path / "image.tar")
    with open(tmp_path / "image.tar", "rb") as handle:
        submission = create_submission(
            phase=algorithm_phase, user=algorithm_participant, upload=File(handle, name="image.tar")
        )
    assert local_client.process_submission(submission.pk, client=object()) == "failed"
    assert stand_in.calls[0]["run_as"] == (1000, 1000) and stand_in.calls[0]["image"].startswith("sha256:")
    submission.refresh_from_db()
    assert "42" not in submission.error_message and "non-zero code (withheld" in submission.error_message
    api = APIClient()
    api.force_authenticate(algorithm_participant)
    body = api.get(f"/api/submissions/{submission.pk}/").json()
    assert "42" not in body["error_message"] and "non-zero code (withheld" in body["error_message"]
    assert not {"exit_code", "duration_seconds", "jobs"} & set(body)
    client.force_login(algorithm_participant)
    page = client.get(reverse("algorithms:submission", kwargs={"pk": submission.pk})).content.decode()
    assert "exit-code" not in page and "Exit code" not in page and ">42<" not in page and "3.2" not in page
    assert "non-zero code (withheld" in page
    client.force_login(algorithm_organizer)
    page = client.get(reverse("algorithms:submission", kwargs={"pk": submission.pk})).content.decode()
    assert '<td class="exit-code">42</td>' in page and '<td class="duration">3.2</td>' in page


def test_exit_codes_are_shown_on_open_phases(algorithm_phase, algorithm_participant, tmp_path, monkeypatch, client):
    algorithm_phase.dataset.split = "train"
    algorithm_phase.dataset.save()
    StandIn(
        monkeypatch, result=runner.RunResult(False, reason=runner.exit_code_reason(42), exit_code=42, duration_s=3.21)
    )
    write_archive(tmp_path / "image.tar")
    with open(tmp_path / "image.tar", "rb") as handle:
        submission = create_submission(
            phase=algorithm_phase, user=algorithm_participant, upload=File(handle, name="image.tar")
        )
    local_client.process_submission(submission.pk, client=object())
    submission.refresh_from_db()
    assert submission.error_message.endswith("the algorithm exited with code 42")
    client.force_login(algorithm_participant)
    page = client.get(reverse("algorithms:submission", kwargs={"pk": submission.pk})).content.decode()
    assert '<td class="exit-code">42</td>' in page


def test_a_reused_submission_id_never_reuses_a_run_folder(
    algorithm_phase, algorithm_participant, tmp_path, monkeypatch
):
    """A fresh database hands out submission ids again: the second submission with the same id must not find the
    first one's predictions (here landmarks.json beside angles.json, which the scorer would have mixed in)."""
    truth = algorithm_phase.truth
    write_archive(tmp_path / "image.tar")

    def submit_and_run(angles, files, pk=None):
        StandIn(monkeypatch, angles=angles, files=files)
        with open(tmp_path / "image.tar", "rb") as handle:
            submission = create_submission(
                phase=algorithm_phase, user=algorithm_participant, upload=File(handle, name="image.tar")
            )
        if pk is not None:  # the same id again, as a new database would give it
            Submission.objects.filter(pk=submission.pk).update(id=pk)
            submission = Submission.objects.get(pk=pk)
        assert local_client.process_submission(submission.pk, client=object()) in ("scored", "failed")
        submission.refresh_from_db()
        return submission

    exact = {case: list(angles) for case, angles in truth.items()}
    first = submit_and_run({case: [0.0, 1.0, 0.0] for case in truth}, ("angles.json", "landmarks.json"))
    first_folder = execution.predictions_dir(first.pk)
    pk = first.pk
    Submission.objects.filter(pk=pk).delete()  # the first database is gone; its files are not
    assert not AlgorithmRun.objects.exists() and (first_folder / sorted(truth)[0] / "landmarks.json").exists()
    second = submit_and_run(exact, ("angles.json",), pk=pk)
    assert second.pk == pk and second.status == "succeeded", second.error_message
    folder = execution.predictions_dir(second.pk)
    assert folder != first_folder
    assert sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.json")) == sorted(
        f"{case}/angles.json" for case in truth
    )
    assert second.evaluation.aggregates["smape"] == pytest.approx(0.0, abs=1e-9)


def test_recovery_without_an_engine_still_requeues(algorithm_phase, algorithm_participant, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/sec-containers.sock")
    submission = Submission.objects.create(phase=algorithm_phase, creator=algorithm_participant, status="running")
    AlgorithmRun.objects.create(
        submission=submission, worker="dead:1", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    monkeypatch.setattr("spinebench.algorithms.tasks.process_algorithm_submission.delay", lambda **kwargs: None)
    assert execution.recover() == {"requeued": 1, "containers_removed": 0}
