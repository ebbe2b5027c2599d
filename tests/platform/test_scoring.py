"""The CSV scoring path in embedded mode (tasks in-process at commit, the same task code as a worker runs):
specific validation errors, SMAPE against a hand computation, the submission limit, re-ranking one phase, the
time-limit sweep."""

from datetime import timedelta

import pytest
from django.utils import timezone

from spinebench.submissions.models import Evaluation, Submission
from spinebench.submissions.services import SubmissionRefused, create_submission, submit_baseline
from spinebench.submissions.tasks import score_submission, sweep_time_limits

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}


def submit(phase, user, upload, capture):
    with capture(execute=True):
        submission = create_submission(phase=phase, user=user, upload=upload)
    submission.refresh_from_db()
    return submission


def test_csv_is_scored_with_smape(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    submission = submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks)
    assert submission.status == "succeeded", submission.error_message
    aggregates = submission.evaluation.aggregates
    assert aggregates["smape"] == pytest.approx(smape(HIDDEN_ANGLES, GOOD), abs=1e-9)
    expected_mae_pt = sum(abs(GOOD[c][0] - HIDDEN_ANGLES[c][0]) for c in GOOD) / 3
    assert aggregates["mae_pt"] == pytest.approx(expected_mae_pt, abs=1e-9)
    assert set(submission.evaluation.case_metrics) == set(HIDDEN_ANGLES)
    assert submission.evaluation.rank == 1
    assert submission.started_at and submission.finished_at


BAD_FILES = [
    (b"case_id,pt,mt\ncase_a,1,2\n", "missing column(s) tl"),
    (b"case_id,pt,mt,tl\ncase_a,1,2,3\ncase_b,1,2,3\n", "no prediction for case(s) 'case_c'"),
    (b"case_id,pt,mt,tl\ncase_a,1,2,3\ncase_a,1,2,3\ncase_b,1,2,3\ncase_c,1,2,3\n", "line 3: duplicate case 'case_a'"),
    (b"case_id,pt,mt,tl\ncase_a,1,2,3\ncase_b,1,2,3\ncase_c,1,2,3\ncase_z,1,2,3\n", "unknown case(s) 'case_z'"),
    (b"case_id,pt,mt,tl\ncase_a,1,2,3\ncase_b,x,2,3\ncase_c,1,2,3\n", "line 3: pt 'x' is not a number"),
    (b"case_id,pt,mt,tl\ncase_a,1,2,3\ncase_b,1,nan,3\ncase_c,1,2,3\n", "mt must be a finite number"),
    (b"case_id,pt,mt,tl\ncase_a,1,2,3\ncase_b,1,2,-3\ncase_c,1,2,3\n", "line 3: Cobb angles must be non-negative"),
    (b"case_id,pt,mt,tl\n\xff\xfe", "not UTF-8 text: byte 0xff at line 2"),
    (b"", "the file is empty"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES, ids=[message for _, message in BAD_FILES])
def test_validation_errors_are_specific(
    phase, participant, eager_tasks, django_capture_on_commit_callbacks, content, message
):
    submission = submit(phase, participant, csv_upload(content=content), django_capture_on_commit_callbacks)
    assert submission.status == "failed"
    assert message in submission.error_message
    assert not Evaluation.objects.filter(submission=submission).exists()
    for hidden in HIDDEN_ANGLES.values():  # the message never quotes hidden values
        assert all(str(value) not in submission.error_message for value in hidden)


def test_over_the_size_limit(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    phase.max_upload_bytes = 20
    phase.save()
    submission = submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks)
    assert submission.status == "failed"
    assert "over this phase's limit of 20 bytes" in submission.error_message


def test_limit_counts_only_accepted_submissions(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    phase.submission_limit = 2
    phase.save()
    failed = submit(phase, participant, csv_upload(content=b""), django_capture_on_commit_callbacks)
    assert failed.status == "failed"
    for _ in range(2):
        assert submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks).status == "succeeded"
    with pytest.raises(SubmissionRefused, match="Submission limit reached: 2 of 2") as refusal:
        create_submission(phase=phase, user=participant, upload=csv_upload(GOOD))
    assert refusal.value.code == "limit"
    # outside the window they no longer count
    Submission.objects.filter(phase=phase).update(created=timezone.now() - timedelta(hours=25))
    assert submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks).status == "succeeded"


def test_refusals(phase, participant, other_user):
    with pytest.raises(SubmissionRefused, match="not an approved participant") as refusal:
        create_submission(phase=phase, user=other_user, upload=csv_upload(GOOD))
    assert refusal.value.code == "not_participant"
    phase.closes_at = timezone.now() - timedelta(minutes=1)
    phase.save()
    with pytest.raises(SubmissionRefused, match="not accepting submissions"):
        create_submission(phase=phase, user=participant, upload=csv_upload(GOOD))


def test_rerank_touches_only_the_changed_phase(eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(selection="best")
    other = PhaseFactory(challenge=phase.challenge)
    users = [RegistrationFactory(challenge=phase.challenge).user for _ in range(3)]
    worse = {case: (a + 5, b + 5, c + 5) for case, (a, b, c) in GOOD.items()}
    first = submit(phase, users[0], csv_upload(worse), django_capture_on_commit_callbacks)
    second = submit(phase, users[1], csv_upload(GOOD), django_capture_on_commit_callbacks)
    tied = submit(phase, users[2], csv_upload(GOOD), django_capture_on_commit_callbacks)
    elsewhere = submit(other, users[0], csv_upload(GOOD), django_capture_on_commit_callbacks)
    Evaluation.objects.filter(submission=elsewhere).update(rank=99)  # a stale rank re-ranking `phase` must not touch
    submit(phase, users[0], csv_upload(HIDDEN_ANGLES), django_capture_on_commit_callbacks)  # perfect: user 0 now 1st
    ranks = {s.pk: Evaluation.objects.get(submission=s).rank for s in (first, second, tied, elsewhere)}
    assert ranks[first.pk] is None  # superseded by the same participant's better submission
    assert ranks[second.pk] == ranks[tied.pk] == 2  # a tie shares the rank
    assert ranks[elsewhere.pk] == 99


def test_baseline_submission_and_badge(phase, eager_tasks, django_capture_on_commit_callbacks, tmp_path):
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("case_id,pt,mt,tl\n" + "".join(f"{c},{a},{b},{d}\n" for c, (a, b, d) in GOOD.items()))
    with django_capture_on_commit_callbacks(execute=True):
        baseline = submit_baseline(phase=phase, method="seg4reg", predictions_path=predictions)
    baseline.refresh_from_db()
    assert baseline.status == "succeeded" and baseline.is_baseline and baseline.participant_name == "seg4reg"
    assert baseline.evaluation.rank == 1


def test_redelivered_task_does_not_score_twice(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    submission = submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks)
    created = submission.evaluation.created
    assert score_submission(submission_pk=submission.pk) == "nothing to do: succeeded"
    assert Evaluation.objects.get(submission=submission).created == created


def test_task_resumes_a_submission_left_in_scoring(phase, participant):
    """What a redelivery after a dead worker finds: status `scoring` (committed), no evaluation."""
    submission = create_submission(phase=phase, user=participant, upload=csv_upload(GOOD))
    Submission.objects.filter(pk=submission.pk).update(status="scoring")
    assert score_submission(submission_pk=submission.pk) == "scored"
    assert Evaluation.objects.filter(submission=submission).count() == 1


def test_sweep_fails_submissions_past_the_time_limit(phase, participant):
    stuck = create_submission(phase=phase, user=participant, upload=csv_upload(GOOD))  # queued, never dispatched
    fresh = create_submission(phase=phase, user=participant, upload=csv_upload(GOOD))
    Submission.objects.filter(pk=stuck.pk).update(
        created=timezone.now() - timedelta(seconds=phase.time_limit_seconds + 5)
    )
    assert sweep_time_limits() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == "failed"
    assert f"time limit of {phase.time_limit_seconds} s (it was queued)" in stuck.error_message
    assert fresh.status == "queued"


def test_algorithm_phase_stores_the_archive_and_dispatches_the_algorithm_pipeline(
    phase, participant, django_capture_on_commit_callbacks
):
    phase.submission_kind = "algorithm"
    phase.save()
    from spinebench.workers.services import record_heartbeat

    record_heartbeat(hostname="containers@test", queues=["containers-cpu"])  # a live container worker serves it
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submission = create_submission(
            phase=phase, user=participant, upload=csv_upload(name="image.tar.gz", content=b"\x1f\x8b archive")
        )
    submission.refresh_from_db()
    assert submission.status == "queued" and submission.algorithm_archive.name.endswith(".tar.gz")
    assert not submission.predictions_file
    assert len(callbacks) == 1  # process_algorithm_submission.delay, run by spinebench.algorithms
