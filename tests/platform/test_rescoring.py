"""Versioned evaluations and re-scoring a phase (spinebench.evaluation): after a ground-truth change every succeeded
submission is evaluated again, the whole phase switches to the next evaluation version at once (history kept, the
leaderboard snapshot names the version), and a submission that cannot be evaluated fails the job, names itself and
leaves the phase exactly as it was."""

import pytest

from spinebench.evaluation.models import PastEvaluation, RescoreJob, StagedScore
from spinebench.evaluation.rescoring import RescoreRefused, start_rescore
from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.organizers.models import AuditEvent
from spinebench.submissions.models import Evaluation
from spinebench.submissions.services import create_submission

from .aasce_data import HIDDEN_ANGLES, smape, write_aasce_dataset
from .conftest import csv_upload
from .factories import RegistrationFactory

pytestmark = pytest.mark.django_db

NEAR_OLD = {"case_a": (31.0, 27.0, 14.0), "case_b": (17.0, 22.0, 12.0), "case_c": (24.0, 19.0, 11.0)}
NEAR_NEW = {"case_a": (40.0, 30.0, 20.0), "case_b": (20.0, 25.0, 15.0), "case_c": (30.0, 22.0, 14.0)}
#: Corrected labels: NEAR_NEW now matches them better than NEAR_OLD, so the ranks swap.
CORRECTED = {"case_a": (40.5, 30.5, 20.5), "case_b": (20.5, 25.5, 15.5), "case_c": (30.5, 22.5, 14.5)}


def _submit(phase, user, angles, capture):
    with capture(execute=True):
        submission = create_submission(phase=phase, user=user, upload=csv_upload(angles))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    return submission


@pytest.fixture
def scored(phase, eager_tasks, django_capture_on_commit_callbacks):
    first = _submit(phase, RegistrationFactory(challenge=phase.challenge).user, NEAR_OLD,
                    django_capture_on_commit_callbacks)
    second = _submit(phase, RegistrationFactory(challenge=phase.challenge).user, NEAR_NEW,
                     django_capture_on_commit_callbacks)
    return first, second


def _correct_labels(phase, angles):
    write_aasce_dataset(phase.dataset.root, angles, split="test")


def _evaluations(phase) -> dict:
    return {e.submission_id: (e.metrics, e.rank, e.version) for e in Evaluation.objects.filter(submission__phase=phase)}


def _rescore(phase, organizer, capture, note="labels of all cases corrected"):
    with capture(execute=True):
        job = start_rescore(phase=phase, actor=organizer, note=note)
    job.refresh_from_db()
    return job


def test_scores_record_the_phase_version(phase, scored):
    first, second = scored
    assert phase.evaluation_version == 1
    assert {first.evaluation.version, second.evaluation.version} == {1}
    snapshot = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    assert snapshot.evaluation_version == 1


def test_rescore_switches_the_whole_phase_to_the_new_version(
    phase, organizer, scored, django_capture_on_commit_callbacks
):
    first, second = scored
    assert (first.evaluation.rank, second.evaluation.rank) == (1, 2)
    old_first = first.evaluation.aggregates["smape"]
    _correct_labels(phase, CORRECTED)

    job = _rescore(phase, organizer, django_capture_on_commit_callbacks)

    assert job.status == "succeeded", job.error_message
    assert (job.from_version, job.to_version, job.scored, job.total) == (1, 2, 2, 2)
    phase.refresh_from_db()
    assert phase.evaluation_version == 2
    for submission, angles in ((first, NEAR_OLD), (second, NEAR_NEW)):
        evaluation = Evaluation.objects.get(submission=submission)
        assert evaluation.version == 2
        assert evaluation.aggregates["smape"] == pytest.approx(smape(CORRECTED, angles), abs=1e-9)
        past = PastEvaluation.objects.get(submission=submission)
        assert past.version == 1 and past.replaced_by == job
        assert past.aggregates["smape"] == pytest.approx(smape(HIDDEN_ANGLES, angles), abs=1e-9)
    assert PastEvaluation.objects.get(submission=first).aggregates["smape"] == old_first
    # The ranks follow the corrected labels, and the new snapshot names the version.
    assert Evaluation.objects.get(submission=second).rank == 1
    assert Evaluation.objects.get(submission=first).rank == 2
    snapshot = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    assert snapshot.evaluation_version == 2
    assert [row["submission"] for row in snapshot.rows] == [second.pk, first.pk]
    assert not StagedScore.objects.exists()
    actions = list(AuditEvent.objects.filter(challenge=phase.challenge).values_list("action", "actor_name"))
    assert ("phase.rescore", organizer.username) in actions and ("phase.rescored", "system") in actions


def test_a_failing_submission_fails_the_job_and_changes_nothing(
    phase, organizer, scored, django_capture_on_commit_callbacks
):
    first, second = scored
    before = _evaluations(phase)
    snapshots = LeaderboardSnapshot.objects.filter(phase=phase).count()
    # A case added to the test set: no stored predictions cover it.
    _correct_labels(phase, {**CORRECTED, "case_d": (10.0, 10.0, 10.0)})

    job = _rescore(phase, organizer, django_capture_on_commit_callbacks)

    assert job.status == "failed"
    assert job.failed_submission_id == first.pk
    assert f"Submission {first.pk} ({first.participant_name})" in job.error_message
    assert "case_d" in job.error_message and "evaluation version 1" in job.error_message
    phase.refresh_from_db()
    assert phase.evaluation_version == 1
    assert _evaluations(phase) == before
    assert not PastEvaluation.objects.exists() and not StagedScore.objects.exists()
    assert LeaderboardSnapshot.objects.filter(phase=phase).count() == snapshots


def test_a_second_job_is_refused_while_one_is_active(phase, organizer, scored):
    job = start_rescore(phase=phase, actor=organizer)  # not run: no commit callbacks executed
    assert job.status == "queued"
    with pytest.raises(RescoreRefused, match=f"job {job.pk}"):
        start_rescore(phase=phase, actor=organizer)
    assert RescoreJob.objects.filter(phase=phase).count() == 1


def test_a_redelivered_job_does_nothing_twice(phase, organizer, scored, django_capture_on_commit_callbacks):
    _correct_labels(phase, CORRECTED)
    job = _rescore(phase, organizer, django_capture_on_commit_callbacks)
    from spinebench.evaluation.tasks import rescore_phase

    assert rescore_phase(job_pk=job.pk) == "nothing to do: succeeded"
    assert PastEvaluation.objects.count() == 2


def test_a_job_whose_worker_died_gives_way_to_a_new_one(phase, organizer, scored, settings):
    from datetime import timedelta

    from django.utils import timezone

    lost = start_rescore(phase=phase, actor=organizer)  # never run: as if its worker died with the message
    silent_since = timezone.now() - timedelta(seconds=settings.SPINEBENCH_SCORING_LEASE_SECONDS + 5)
    RescoreJob.objects.filter(pk=lost.pk).update(progressed_at=silent_since)
    fresh = start_rescore(phase=phase, actor=organizer)
    lost.refresh_from_db()
    assert lost.status == "failed" and "worker stopped without finishing" in lost.error_message
    assert fresh.status == "queued" and fresh.pk != lost.pk
