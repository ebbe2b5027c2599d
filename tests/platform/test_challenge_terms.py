"""Terms / data-use agreement: versioned by the organizers (page and API), accepted by participants with the version
and time; without the current version accepted, no training download and no submission; a new version asks again."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from spinebench.access import can_download_dataset
from spinebench.challenges.models import TermsAcceptance
from spinebench.organizers.models import AuditEvent
from spinebench.submissions.services import SubmissionRefused, create_submission

from .conftest import csv_upload

pytestmark = pytest.mark.django_db


def test_terms_gate_downloads_and_submissions_until_accepted(
    client, phase, participant, organizer, eager_tasks, django_capture_on_commit_callbacks
):
    challenge = phase.challenge
    assert can_download_dataset(phase.training_dataset, participant)  # no terms: as before
    client.force_login(organizer)
    response = client.post(reverse("organizers:terms", args=[challenge.slug]), {"text": "Use the data for *research*."})
    assert response.status_code == 302
    assert not can_download_dataset(phase.training_dataset, participant)
    assert can_download_dataset(phase.training_dataset, organizer)
    with pytest.raises(SubmissionRefused) as refused:
        create_submission(phase=phase, user=participant, upload=csv_upload())
    assert refused.value.code == "terms"
    api = APIClient()
    api.force_authenticate(participant)
    refused_api = api.post(reverse("phase-submissions", args=[phase.pk]), {"file": csv_upload()}, format="multipart")
    assert refused_api.status_code == 403 and refused_api.json()["code"] == "terms"

    client.force_login(participant)
    page = client.get(challenge.get_absolute_url()).content.decode()
    assert "Read and accept the terms" in page
    terms_page = client.get(reverse("challenges:terms", args=[challenge.slug])).content.decode()
    assert "<em>research</em>" in terms_page and "version 1" in terms_page
    assert client.post(reverse("challenges:terms", args=[challenge.slug])).status_code == 302
    acceptance = TermsAcceptance.objects.get(user=participant)
    assert acceptance.terms.version == 1 and acceptance.accepted_at is not None
    assert can_download_dataset(phase.training_dataset, participant)
    with django_capture_on_commit_callbacks(execute=True):
        assert create_submission(phase=phase, user=participant, upload=csv_upload()).pk

    # a new version (through the API) asks again
    organizer_api = APIClient()
    organizer_api.force_authenticate(organizer)
    url = reverse("organizer-challenge-terms", args=[challenge.slug])
    assert organizer_api.post(url, {"text": "  "}, format="json").status_code == 400
    assert organizer_api.post(url, {"text": "Version two."}, format="json").status_code == 201
    assert [(row["version"], row["accepted"]) for row in organizer_api.get(url).json()] == [(2, 0), (1, 1)]
    assert not can_download_dataset(phase.training_dataset, participant)
    shown = api.get(reverse("challenge-terms", args=[challenge.slug])).json()
    assert (shown["version"], shown["accepted_at"]) == (2, None)
    accepted = api.post(reverse("challenge-accept-terms", args=[challenge.slug])).json()
    assert accepted["version"] == 2 and accepted["accepted_at"]
    assert can_download_dataset(phase.training_dataset, participant)
    assert list(AuditEvent.objects.filter(action="terms.publish").values_list("target", flat=True)) == [
        "terms v2", "terms v1"]


def test_no_terms_is_a_404(client, phase):
    assert client.get(reverse("challenges:terms", args=[phase.challenge.slug])).status_code == 404
    assert APIClient().get(reverse("challenge-terms", args=[phase.challenge.slug])).status_code == 404
