"""The submission quota service: one rule for the phase page, the upload page, the API and the refusal."""

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from spinebench.submissions.models import Submission
from spinebench.submissions.quota import submission_quota
from spinebench.submissions.services import SubmissionRefused, create_submission

from .aasce_data import HIDDEN_ANGLES
from .conftest import csv_upload

pytestmark = pytest.mark.django_db


def submit(phase, user, upload, capture):
    with capture(execute=True):
        return create_submission(phase=phase, user=user, upload=upload)


def test_counts_accepted_submissions_in_the_rolling_window(
    phase, participant, eager_tasks, django_capture_on_commit_callbacks
):
    phase.submission_limit = 2
    phase.save()
    assert submission_quota(phase=phase, user=participant).as_dict() == {
        "limit": 2,
        "used": 0,
        "remaining": 2,
        "exhausted": False,
        "period_hours": 24,
        "next_frees_at": None,
        "total_limit": None,
        "total_used": 0,
    }
    failed = submit(phase, participant, csv_upload(content=b""), django_capture_on_commit_callbacks)
    assert failed.status == "failed"
    first = submit(phase, participant, csv_upload(HIDDEN_ANGLES), django_capture_on_commit_callbacks)
    quota = submission_quota(phase=phase, user=participant)
    assert (quota.used, quota.remaining, quota.exhausted) == (1, 1, False)  # the failed upload cost nothing
    assert quota.next_frees_at == first.created + timedelta(hours=24)

    submit(phase, participant, csv_upload(HIDDEN_ANGLES), django_capture_on_commit_callbacks)
    quota = submission_quota(phase=phase, user=participant)
    assert (quota.used, quota.remaining, quota.exhausted) == (2, 0, True)
    with pytest.raises(SubmissionRefused, match="Submission limit reached: 2 of 2.*next one frees up") as refusal:
        create_submission(phase=phase, user=participant, upload=csv_upload(HIDDEN_ANGLES))
    assert refusal.value.code == "limit"

    # At the moment the oldest leaves the window, one slot is free again; a second before, none is.
    frees_at = quota.next_frees_at
    assert submission_quota(phase=phase, user=participant, now=frees_at - timedelta(seconds=1)).remaining == 0
    assert submission_quota(phase=phase, user=participant, now=frees_at).remaining == 1


def test_no_limit_and_anonymous(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    phase.submission_limit = None
    phase.save()
    submit(phase, participant, csv_upload(HIDDEN_ANGLES), django_capture_on_commit_callbacks)
    quota = submission_quota(phase=phase, user=participant)
    assert (quota.limit, quota.used, quota.remaining, quota.exhausted, quota.next_frees_at) == (
        None,
        1,
        None,
        False,
        None,
    )
    assert submission_quota(phase=phase, user=AnonymousUser()).used == 0


def test_api_quota_endpoint(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    phase.submission_limit = 3
    phase.save()
    submission = submit(phase, participant, csv_upload(HIDDEN_ANGLES), django_capture_on_commit_callbacks)
    client = APIClient()
    url = f"/api/phases/{phase.pk}/quota/"
    assert client.get(url).status_code == 401
    client.force_authenticate(participant)
    body = client.get(url).json()
    assert body["limit"] == 3 and body["used"] == 1 and body["remaining"] == 2 and body["exhausted"] is False
    assert datetime.fromisoformat(body["next_frees_at"]) == submission.created + timedelta(hours=24)
    assert b"/api/phases/{id}/quota/" in client.get("/api/schema/").content


def test_pages_state_the_quota(client, phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    phase.submission_limit = 2
    phase.closes_at = timezone.now() + timedelta(days=3, hours=1)
    phase.save()
    client.force_login(participant)
    page = client.get(phase.get_absolute_url()).content.decode()
    assert "<strong>2 of 2</strong> submissions left" in page and "2 per 24 h" in page
    assert "3\xa0days" in page and "left)" in page  # time left until the phase closes, in words
    for _ in range(2):
        submit(phase, participant, csv_upload(HIDDEN_ANGLES), django_capture_on_commit_callbacks)
    for url in (phase.get_absolute_url(), reverse("submissions:create", args=[phase.challenge.slug, phase.slug])):
        page = client.get(url).content.decode()
        assert "You have used all 2 submissions" in page, url
    oldest = Submission.objects.filter(phase=phase).order_by("created").first()
    assert (oldest.created + timedelta(hours=24)).strftime("%Y-%m-%d %H:%M") in page


def test_phase_total_limits_over_the_whole_phase(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    """A total per phase counts every accepted submission, however old; once used up it never frees."""
    phase.submission_limit, phase.submission_total_limit = 5, 2
    phase.save()
    first = submit(phase, participant, csv_upload(), django_capture_on_commit_callbacks)
    Submission.objects.filter(pk=first.pk).update(created=timezone.now() - timedelta(days=30))  # out of the window
    submit(phase, participant, csv_upload(), django_capture_on_commit_callbacks)
    quota = submission_quota(phase=phase, user=participant)
    assert (quota.used, quota.total_used, quota.remaining, quota.exhausted) == (1, 2, 0, True)
    assert quota.next_frees_at is None
    with pytest.raises(SubmissionRefused, match="2 of 2 submissions on this phase") as refused:
        submit(phase, participant, csv_upload(), django_capture_on_commit_callbacks)
    assert refused.value.code == "limit"
    phase.submission_total_limit = 3
    phase.save()
    quota = submission_quota(phase=phase, user=participant)
    assert (quota.remaining, quota.exhausted) == (1, False)  # min(5 - 1, 3 - 2)
