"""An algorithm run whose container engine went away is requeued, not failed, at most SPINEBENCH_MAX_REQUEUES times
(the workers app's Requeue counter), then failed with the engine's reason. The whole restart, with a second
dockerd, is tests/faults/test_dockerd_restart.py; this is the bound, on the database alone."""

import pytest

from spinebench.algorithms.execution import ENGINE_FAULT_REQUEUES, requeue_after_engine_fault
from spinebench.submissions.models import Submission
from spinebench.submissions.status import Status
from spinebench.workers.services import requeue_count

from .factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


def test_engine_faults_requeue_up_to_the_limit_then_fail_with_the_reason(settings):
    settings.SPINEBENCH_MAX_REQUEUES = 2
    phase = PhaseFactory(submission_kind="algorithm")
    user = RegistrationFactory(challenge=phase.challenge).user
    submission = Submission.objects.create(phase=phase, creator=user, status=Status.RUNNING)
    for attempt in (1, 2):
        assert requeue_after_engine_fault(submission.pk) == "requeued"
        submission.refresh_from_db()
        assert submission.status == Status.QUEUED and submission.finished_at is None
        assert requeue_count(kind=ENGINE_FAULT_REQUEUES, object_id=submission.pk) == attempt
        Submission.objects.filter(pk=submission.pk).update(status=Status.RUNNING)  # the next worker claims it
    assert requeue_after_engine_fault(submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED and submission.finished_at is not None
    message = submission.error_message
    assert message.startswith("The container engine went away") and "(3 times)" in message
    # A submission that left `running` meanwhile (cancelled, failed by a sweep) is left alone.
    assert requeue_after_engine_fault(submission.pk) == "nothing to do: failed"
