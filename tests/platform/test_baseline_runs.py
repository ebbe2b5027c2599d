"""Background baseline runs: queued for the baselines worker, trained and submitted with their state, time and peak
memory recorded; failures keep their reason; stopped runs are requeued; degenerate runs are shown but not ranked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from spinebench import cli
from spinebench.submissions.baseline_runs import claim, queue_runs, redispatch_queued, sweep_expired_runs
from spinebench.submissions.models import BaselineRun, Submission
from spinebench.submissions.services import create_submission, submit_baseline
from spinebench.submissions.status import Status

from .aasce_data import HIDDEN_ANGLES, predictions_csv
from .factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


def learnable_phase():
    """A phase whose training split is a small generated phantom set (the factories' images are blank)."""
    import phantoms
    from spinebench.datasets.services import link_phase_datasets, register_dataset

    phase = PhaseFactory()
    folder = phantoms.generate("aasce-cobb", out=Path(settings.DATASETS_ROOT) / phase.slug / "gen-train", cases=3,
                               seed=0, small=True, progress=False)
    training = register_dataset(challenge=phase.challenge, slug=f"{phase.slug}-gen", folder=folder)
    link_phase_datasets(phase=phase, training_dataset=training)
    return phase


def test_a_queued_run_trains_predicts_and_submits(eager_tasks, django_capture_on_commit_callbacks, client):
    phase = learnable_phase()
    with django_capture_on_commit_callbacks(execute=True):
        runs = queue_runs(phases=[phase], methods={"scg-net"}, preset="tiny", device="cpu")
    assert [run.method for run in runs] == ["reference", "scg-net"]
    run = BaselineRun.objects.get(pk=runs[1].pk)
    assert run.status == Status.SUCCEEDED, run.error_message
    assert run.attempts == 1 and run.training_seconds > 0 and run.progress == 1.0
    # A run of a few seconds on tiny images still holds the interpreter, torch and the data: well over 50 MB.
    assert run.peak_memory_bytes > 50 * 1024**2
    submission = run.submission
    assert submission.is_baseline and submission.baseline_method == "scg-net"
    assert submission.status == Status.SUCCEEDED
    # The factory's test inputs are identical blank images, so the method's run report finds one prediction for
    # every case: stored with the submission, which is scored but not ranked as the method.
    assert submission.fallback_share == 0.0
    assert submission.degenerate_reason.startswith("Every one of the 3 cases got the same prediction")
    assert submission.evaluation.rank is None
    reference = BaselineRun.objects.get(pk=runs[0].pk).submission
    assert reference.baseline_method == "reference: training mean" and reference.evaluation.rank == 1
    # A second queueing finds the run and queues nothing; the checkpoint is reused by a new preset-equal run only.
    assert queue_runs(phases=[phase], methods={"scg-net"}, preset="tiny", device="cpu") == []
    page = client.get(f"{phase.challenge.get_absolute_url()}?tab=baselines").content.decode()
    assert "scg-net" in page and "Spinal Curve Guide Network" in page and f"submission {submission.pk}" in page
    assert "Every one of the 3 cases got the same prediction" in page


def test_a_checkpoint_an_earlier_version_wrote_is_trained_again(eager_tasks, django_capture_on_commit_callbacks):
    """A checkpoint left by an earlier version of a method (a setting its Config no longer has) at the run's default
    path is replaced by a new training instead of failing every run; the run succeeds."""
    import torch

    from baselines import api
    from spinebench.submissions.baseline_runs import default_checkpoint

    phase = learnable_phase()
    path = default_checkpoint(phase, "scg-net", "tiny")
    api.train("aasce-cobb", "scg-net", preset="tiny", data_dir=phase.training_dataset.root, out=path, device="cpu",
              progress=False)
    assert api.stale_checkpoint(path, task_id="aasce-cobb", method="scg-net", preset="tiny") is None
    assert "preset 'tiny', not 'standard'" in api.stale_checkpoint(
        path, task_id="aasce-cobb", method="scg-net", preset="standard"
    )
    stored = torch.load(path, weights_only=True)
    stored["config"]["a_removed_setting"] = 3
    torch.save(stored, path)
    assert "unknown setting(s) a_removed_setting" in api.stale_checkpoint(
        path, task_id="aasce-cobb", method="scg-net", preset="tiny"
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs = queue_runs(phases=[phase], methods={"scg-net"}, preset="tiny", device="cpu")
    run = BaselineRun.objects.get(pk=runs[1].pk)
    assert run.status == Status.SUCCEEDED, run.error_message
    assert run.training_seconds > 0  # trained again, not read from the stale file
    assert "a_removed_setting" not in torch.load(path, weights_only=True)["config"]


def test_a_failing_run_ends_failed_with_its_reason_on_the_page(eager_tasks, django_capture_on_commit_callbacks, client):
    phase = PhaseFactory()
    missing = phase.training_dataset.root
    import shutil

    shutil.rmtree(missing)
    with django_capture_on_commit_callbacks(execute=True):
        runs = queue_runs(phases=[phase], methods={"scg-net"}, device="cpu")
    assert [run.method for run in runs] == ["reference", "scg-net"]  # the trivial reference is always queued first
    assert {run.preset for run in runs} == {"standard"}  # AASCE's default preset (baselines/defaults.py)
    for run in runs:
        run.refresh_from_db()
        assert run.status == Status.FAILED and run.submission is None
        assert f"training dataset folder {missing} is missing" in run.error_message
    page = client.get(f"{phase.challenge.get_absolute_url()}?tab=baselines").content.decode()
    assert "is missing" in page and "failed" in page
    # A failed run does not block a new one: the next queueing tries again.
    with django_capture_on_commit_callbacks(execute=False):
        again = queue_runs(phases=[phase], methods={"scg-net"}, device="cpu")
    assert [run.method for run in again] == ["reference", "scg-net"]
    # While a run is active the tab re-requests its run table; the fragment is served alone, without the page.
    BaselineRun.objects.filter(pk=again[0].pk).update(status=Status.RUNNING, stage="training", progress=0.25)
    tab = client.get(f"{phase.challenge.get_absolute_url()}?tab=baselines").content.decode()
    assert 'hx-trigger="every 5s"' in tab and 'value="0.25"' in tab
    fragment = client.get(f"/submissions/baselines/{phase.challenge.slug}/?fragment=runs").content.decode()
    assert fragment.lstrip().startswith('<div id="baseline-runs"') and "<html" not in fragment


def test_an_expired_lease_is_requeued_and_a_duplicate_delivery_does_nothing(django_capture_on_commit_callbacks):
    phase = PhaseFactory()
    run = BaselineRun.objects.create(phase=phase, method="scg-net", status=Status.QUEUED)
    assert claim(run.pk).status == Status.RUNNING
    assert claim(run.pk) is None  # the same message delivered twice: the second finds it running and leaves
    BaselineRun.objects.filter(pk=run.pk).update(lease_expires=timezone.now() - timedelta(seconds=1), stage="training")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert sweep_expired_runs() == 1
    run.refresh_from_db()
    assert run.status == Status.QUEUED and "stopped during training" in run.error_message
    assert len(callbacks) == 1  # dispatched again
    assert sweep_expired_runs() == 0
    # A live run (lease in the future) is left alone.
    claim(run.pk)
    assert sweep_expired_runs() == 0


def test_serve_dispatches_queued_runs_again_whose_message_was_lost(monkeypatch, django_capture_on_commit_callbacks):
    """Ctrl-C while the worker held a reserved message: the run stays queued with no message anywhere (the embedded
    broker moved it out of the queue on delivery). The next `serve` dispatches every queued run again, oldest first;
    a run that still had its message gets a second one, which claim() ignores."""
    from spinebench.submissions import baseline_runs

    phase = PhaseFactory()
    lost = BaselineRun.objects.create(phase=phase, method="scg-net", status=Status.QUEUED)
    waiting = BaselineRun.objects.create(phase=phase, method="multi-task", status=Status.QUEUED)
    BaselineRun.objects.create(phase=phase, method="seg4reg", status=Status.SUCCEEDED)
    BaselineRun.objects.create(phase=phase, method="top-down", status=Status.RUNNING,
                               lease_expires=timezone.now() + timedelta(hours=1))
    started: list[int] = []
    monkeypatch.setattr(baseline_runs, "_run_starter", started.append)
    with django_capture_on_commit_callbacks(execute=True):
        assert redispatch_queued() == 2
    assert started == [lost.pk, waiting.pk]
    assert claim(waiting.pk).status == Status.RUNNING
    assert claim(waiting.pk) is None  # its original message, delivered after the new one: nothing happens


def test_a_degenerate_baseline_is_shown_greyed_but_not_ranked(eager_tasks, django_capture_on_commit_callbacks,
                                                               client, tmp_path):
    phase = PhaseFactory()
    participant = RegistrationFactory(challenge=phase.challenge).user
    constant = {case: (20.0, 20.0, 10.0) for case in HIDDEN_ANGLES}
    csv = tmp_path / "constant.csv"
    csv.write_bytes(predictions_csv(constant))
    with django_capture_on_commit_callbacks(execute=True):
        degenerate = submit_baseline(phase=phase, method="top-down", predictions_path=csv, fallback_share=1.0,
                                     degenerate_reason="Every case got the same prediction.")
        working = submit_baseline(phase=phase, method="seg4reg", predictions_path=csv, fallback_share=0.0)
        mine = create_submission(phase=phase, user=participant,
                                 upload=SimpleUploadedFile("p.csv", predictions_csv(constant)))
    degenerate.refresh_from_db()
    assert degenerate.status == Status.SUCCEEDED and degenerate.evaluation.rank is None
    assert Submission.objects.get(pk=working.pk).evaluation.rank == 1
    assert Submission.objects.get(pk=mine.pk).evaluation.rank == 1  # equal scores share the rank
    page = client.get(phase.get_absolute_url()).content.decode()
    assert 'id="degenerate-baselines"' in page and "Every case got the same prediction." in page
    exported = client.get(reverse("leaderboards:export-csv", args=[phase.challenge.slug, phase.slug])).content.decode()
    assert "seg4reg" in exported and "top-down" not in exported


def test_bootstrap_reports_bundle_failures_and_exits_non_zero(monkeypatch, tmp_path, capsys):
    broken = tmp_path / "bundles" / "broken"
    broken.mkdir(parents=True)
    (broken / "challenge.yaml").write_text("challenge:\n  titel: typo\n", encoding="utf-8")
    monkeypatch.setattr(cli, "BUNDLES_DIR", tmp_path / "bundles")
    assert cli.main(["bootstrap", "--no-generate", "--no-baselines"]) == 1
    err = capsys.readouterr().err
    assert "1 failure(s)" in err and "bundle broken" in err and "titel" in err


def test_the_trivial_reference_runs_first_and_methods_that_do_not_beat_it_are_not_ranked(
        eager_tasks, django_capture_on_commit_callbacks, tmp_path):
    phase = PhaseFactory()  # training angles (10.5, 20.5, 5.5) and (12.25, 8.75, 3.5): mean (11.375, 14.625, 4.5)
    with django_capture_on_commit_callbacks(execute=True):
        (run,) = queue_runs(phases=[phase], methods=set(), device="cpu")  # no method: the reference alone
    run.refresh_from_db()
    assert run.method == "reference" and run.status == Status.SUCCEEDED, run.error_message
    reference = run.submission
    assert reference.baseline_method == "reference: training mean" and reference.evaluation.rank == 1
    truth = {case: angles for case, angles in HIDDEN_ANGLES.items()}
    mean = (11.375, 14.625, 4.5)
    from .aasce_data import smape

    assert reference.evaluation.aggregates["smape"] == pytest.approx(smape(truth, {c: mean for c in truth}))
    near_truth = {case: (a + 1, b + 1, c + 1) for case, (a, b, c) in HIDDEN_ANGLES.items()}
    far = {case: (80.0, 80.0, 80.0) for case in HIDDEN_ANGLES}
    paths = {}
    for name, angles in (("good", near_truth), ("bad", far)):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_bytes(predictions_csv(angles))
    with django_capture_on_commit_callbacks(execute=True):
        good = submit_baseline(phase=phase, method="top-down", predictions_path=paths["good"], fallback_share=0.0)
        bad = submit_baseline(phase=phase, method="seg4reg", predictions_path=paths["bad"], fallback_share=0.0)
    good.refresh_from_db(), bad.refresh_from_db()
    assert good.degenerate_reason == "" and good.evaluation.rank == 1
    assert bad.evaluation.rank is None
    assert bad.degenerate_reason.startswith("Did not beat the trivial reference (training mean): smape ")
    assert "(lower is better)" in bad.degenerate_reason


def test_methods_too_heavy_for_the_background_set_are_left_out_and_listed_with_the_reason(
        django_capture_on_commit_callbacks, client):
    from baselines.registry import METHODS

    phase = PhaseFactory()
    with django_capture_on_commit_callbacks(execute=False):
        runs = queue_runs(phases=[phase], device="cpu")
    queued = {run.method for run in runs}
    assert queued == {"reference", *METHODS["aasce-cobb"]} - {"keypoint-fusion"}
    page = client.get(f"{phase.challenge.get_absolute_url()}?tab=baselines").content.decode()
    assert 'id="not-by-default"' in page and "keypoint-fusion" in page and "6.6 GB" in page
    # Asked for by name, it runs.
    with django_capture_on_commit_callbacks(execute=False):
        assert [run.method for run in queue_runs(phases=[phase], methods={"keypoint-fusion"}, device="cpu")] == [
            "keypoint-fusion"]
