"""The console's REST API (/api/organizers/): the same services and rules as the pages, documented in the schema."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from spinebench.challenges.models import Challenge, Registration
from spinebench.organizers.models import AuditEvent

from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_create_edit_and_logo_through_the_api():
    user = UserFactory()
    client = api(user)
    response = client.post(reverse("organizer-challenge-list"), {
        "title": "Spine API", "slug": "spine-api", "registration_mode": "approval", "is_public": False,
    }, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["organizers"] == [user.username]
    picture = io.BytesIO()
    Image.new("RGB", (8, 8)).save(picture, format="GIF")
    picture.seek(0)
    picture.name = "logo.gif"
    url = reverse("organizer-challenge-detail", args=["spine-api"])
    response = client.patch(url, {"logo": picture, "summary": "Short."}, format="multipart")
    assert response.status_code == 200, response.json()
    assert response.json()["logo_url"] == reverse("challenges:logo", args=["spine-api"])
    bad = client.patch(url, {"logo": io.BytesIO(b"GIF89a-not-really")}, format="multipart")
    assert bad.status_code == 400 and "logo" in bad.json()
    taken = client.patch(url, {"slug": PhaseFactory().challenge.slug}, format="json")
    assert taken.status_code == 400 and "slug" in taken.json()
    assert Challenge.objects.get(organizers=user).slug == "spine-api"
    assert api(UserFactory()).get(url).status_code == 404  # not an organizer: as if it did not exist


def test_organizers_phases_registrations_and_audit_through_the_api():
    phase = PhaseFactory()
    challenge = phase.challenge
    organizer = UserFactory()
    challenge.organizers.add(organizer)
    client = api(organizer)
    detail = reverse("organizer-challenge-detail", args=[challenge.slug])
    colleague = UserFactory()
    assert client.post(detail + "organizers/", {"user": colleague.email}, format="json").status_code == 200
    assert client.post(detail + f"organizers/{colleague.username}/remove/").status_code == 200
    last = client.post(detail + f"organizers/{organizer.username}/remove/")
    assert last.status_code == 400 and "user" in last.json()

    phases = reverse("organizer-challenge-phases", args=[challenge.slug])
    bad = client.post(phases, {"slug": "p2", "title": "P2", "task": "aasce-cobb", "extra_metrics": ["nope"]},
                      format="json")
    assert bad.status_code == 400 and "extra_metrics" in bad.json()
    made = client.post(phases, {"slug": "p2", "title": "P2", "task": "aasce-cobb", "submission_total_limit": 4},
                       format="json")
    assert made.status_code == 201, made.json()
    assert [row["slug"] for row in client.get(phases).json()] == [phase.slug, "p2"]
    moved = client.post(reverse("organizer-phase-move", args=[made.json()["id"]]), {"direction": "up"},
                        format="json")
    assert [row["slug"] for row in moved.json()] == ["p2", phase.slug]
    dates = client.patch(reverse("organizer-phase-detail", args=[phase.pk]),
                         {"opens_at": "2030-01-02T00:00:00Z", "closes_at": "2030-01-01T00:00:00Z"}, format="json")
    assert dates.status_code == 400 and "closes_at" in dates.json()

    pending = RegistrationFactory(challenge=challenge, status=Registration.Status.PENDING)
    rows = client.get(reverse("organizer-challenge-registrations", args=[challenge.slug]), {"status": "pending"})
    assert [row["user"] for row in rows.json()] == [pending.user.username]
    decided = client.post(reverse("organizer-challenge-decide-registrations", args=[challenge.slug]),
                          {"registrations": [pending.pk], "decision": "reject", "message": "Out of scope."},
                          format="json")
    assert decided.status_code == 200 and decided.json()[0]["status"] == "rejected"

    audit = client.get(reverse("organizer-challenge-audit", args=[challenge.slug]), {"action": "phase.create"})
    assert [event["target"] for event in audit.json()] == ["phase p2"]
    assert AuditEvent.objects.filter(challenge=challenge).count() == 5  # add, remove, create, move, reject


def test_outsiders_and_participants_cannot_manage():
    phase = PhaseFactory()
    participant = RegistrationFactory(challenge=phase.challenge).user
    for user in (UserFactory(), participant):
        client = api(user)
        assert client.get(reverse("organizer-challenge-audit", args=[phase.challenge.slug])).status_code == 404
        assert client.patch(reverse("organizer-phase-detail", args=[phase.pk]), {"title": "x"},
                            format="json").status_code == 404
    assert APIClient().get(reverse("organizer-challenge-list")).status_code == 401


def test_the_console_api_is_in_the_schema(client):
    schema = client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert "/api/organizers/challenges/" in paths and "post" in paths["/api/organizers/challenges/"]
    assert "/api/organizers/phases/{id}/move/" in paths
