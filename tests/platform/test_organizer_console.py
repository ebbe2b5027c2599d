"""The organizers' console (issue #12 items 1-3, registrations, audit): roles without staff rights, the challenge
editor (logo re-encoding, markdown preview), the phase editor (field-keyed errors, re-rank on a ranking change),
registration decisions, the audit page, and the admin closed to staff without superuser rights."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from PIL import Image

from spinebench.challenges.models import Challenge, Phase, Registration
from spinebench.notifications.models import Notification
from spinebench.organizers.models import AuditEvent

from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db


def image_upload(fmt: str = "JPEG", *, size=(40, 20), exif: bool = False, name: str = "logo.jpg") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    picture = Image.new("RGB", size, (200, 30, 30))
    extra = {}
    if exif:
        tags = Image.Exif()
        tags[0x010F] = "SecretCameraMaker"  # Make
        tags[0x8298] = "gps-home-address"  # Copyright
        extra["exif"] = tags.tobytes()
    picture.save(buffer, format=fmt, **extra)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def challenge_form(**overrides) -> dict:
    data = {"title": "Lumbar Landmarks", "slug": "lumbar-landmarks", "summary": "Find the landmarks.",
            "description": "# Hello\n<script>alert(1)</script>**bold**", "is_public": "on",
            "registration_mode": "approval"}
    data.update(overrides)
    return data


def test_a_plain_user_creates_a_challenge_and_becomes_its_organizer(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("organizers:create"), challenge_form(logo=image_upload(exif=True)))
    assert response.status_code == 302, response.content.decode()[:2000]
    challenge = Challenge.objects.get(slug="lumbar-landmarks")
    assert list(challenge.organizers.all()) == [user] and not user.is_staff
    assert response["Location"] == reverse("organizers:overview", args=[challenge.slug])
    event = AuditEvent.objects.get(challenge=challenge, action="challenge.create")
    assert event.actor == user and event.changes["title"] == [None, "Lumbar Landmarks"]
    # the logo: a PNG the site encoded, without the camera's metadata
    logo = client.get(reverse("challenges:logo", args=[challenge.slug]))
    body = b"".join(logo.streaming_content)
    assert logo["Content-Type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"SecretCameraMaker" not in body and b"gps-home-address" not in body
    with Image.open(io.BytesIO(body)) as stored:
        assert stored.size == (40, 20) and not stored.getexif()
    # the page strips raw HTML from the description
    page = client.get(challenge.get_absolute_url()).content.decode()
    assert "<strong>bold</strong>" in page and "<script>alert(1)</script>" not in page


def test_creation_can_be_limited_to_a_group(client):
    user = UserFactory()
    client.force_login(user)
    with override_settings(SPINEBENCH_CHALLENGE_CREATORS_GROUP="organizers"):
        assert client.post(reverse("organizers:create"), challenge_form()).status_code == 403
        assert not Challenge.objects.filter(slug="lumbar-landmarks").exists()
        user.groups.add(Group.objects.create(name="organizers"))
        assert client.post(reverse("organizers:create"), challenge_form()).status_code == 302


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("logo.png", b"<svg onload=alert(1)></svg>", content_type="image/png"), "not an image"),
        (SimpleUploadedFile("logo.png", image_upload("PNG").read()[:60], content_type="image/png"), "damaged"),
        (image_upload("BMP", name="logo.png"), "Unsupported image type BMP"),
        (image_upload("PNG", size=(5000, 2)), "longest side"),
    ],
)
def test_a_bad_logo_is_refused_by_field_and_nothing_is_created(client, upload, message):
    client.force_login(UserFactory())
    response = client.post(reverse("organizers:create"), challenge_form(logo=upload))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Challenge.objects.exists()


def test_a_taken_slug_is_a_field_error(client):
    ChallengeFactory(slug="lumbar-landmarks")
    client.force_login(UserFactory())
    response = client.post(reverse("organizers:create"), challenge_form())
    assert response.status_code == 400 and "slug" in response.context["form"].errors
    assert Challenge.objects.count() == 1


def test_markdown_preview_strips_raw_html(client):
    client.force_login(UserFactory())
    response = client.post(reverse("organizers:preview"), {"description": "*hi*<img src=x onerror=alert(1)>"})
    text = response.content.decode()
    assert "<em>hi</em>" in text and "onerror" not in text


def test_edit_records_before_and_after(client, organizer, phase):
    challenge = phase.challenge
    client.force_login(organizer)
    url = reverse("organizers:challenge", args=[challenge.slug])
    data = challenge_form(title="Renamed", slug=challenge.slug, is_public="")
    assert client.post(url, data).status_code == 302
    challenge.refresh_from_db()
    assert (challenge.title, challenge.is_public) == ("Renamed", False)
    event = AuditEvent.objects.get(action="challenge.update")
    assert event.changes["title"][1] == "Renamed" and event.changes["is_public"] == [True, False]


def test_co_organizers_are_invited_and_removed_but_never_the_last(client, organizer, phase):
    challenge = phase.challenge
    colleague = UserFactory(email="Colleague@Example.org")
    client.force_login(organizer)
    url = reverse("organizers:organizers", args=[challenge.slug])
    assert client.post(url, {"user": "nobody-here"}).status_code == 400
    assert client.post(url, {"user": "colleague@example.org"}).status_code == 302
    assert set(challenge.organizers.all()) == {organizer, colleague}
    client.force_login(colleague)  # a co-organizer manages at once, without staff rights
    assert client.get(reverse("organizers:overview", args=[challenge.slug])).status_code == 200
    client.post(reverse("organizers:organizer-remove", args=[challenge.slug, organizer.pk]))
    assert list(challenge.organizers.all()) == [colleague]
    client.post(reverse("organizers:organizer-remove", args=[challenge.slug, colleague.pk]))
    assert list(challenge.organizers.all()) == [colleague]  # the last one stays
    actions = list(AuditEvent.objects.filter(challenge=challenge).values_list("action", flat=True))
    assert sorted(actions) == ["organizer.add", "organizer.remove"]


def phase_form(**overrides) -> dict:
    data = {"slug": "final", "title": "Final", "description": "", "task": "aasce-cobb", "submission_kind": "csv",
            "opens_at": "2030-01-01T00:00", "closes_at": "2030-02-01T00:00", "is_public": "on",
            "submission_limit": "3", "submission_limit_period_hours": "24", "submission_total_limit": "10",
            "max_upload_bytes": "1000000", "time_limit_seconds": "3600", "case_time_limit_seconds": "300",
            "memory_limit_mb": "2048", "cpu_limit": "1.0", "pids_limit": "128", "output_limit_mb": "256",
            "primary_metric": "smape", "extra_metrics": '["mae_pt"]', "metric_directions": "{}",
            "decimal_places": "2", "ranking_method": "primary", "selection": "best", "auto_publish": "on"}
    data.update(overrides)
    return data


def test_phase_editor_creates_and_refuses_bad_input_by_field(client, organizer, phase):
    challenge = phase.challenge
    client.force_login(organizer)
    url = reverse("organizers:phase-create", args=[challenge.slug])
    for overrides, field in [
        ({"closes_at": "2029-01-01T00:00"}, "closes_at"),
        ({"primary_metric": "accuracy"}, "primary_metric"),
        ({"extra_metrics": '["nope"]'}, "extra_metrics"),
        ({"metric_directions": '{"smape": "sideways"}'}, "metric_directions"),
        ({"slug": phase.slug}, None),  # the slug is taken in this challenge
        ({"memory_limit_mb": "1"}, "memory_limit_mb"),
    ]:
        response = client.post(url, phase_form(**overrides))
        assert response.status_code == 400, overrides
        errors = response.context["form"].errors
        assert (field in errors) if field else errors, (overrides, errors)
    assert challenge.phases.count() == 1
    assert client.post(url, phase_form()).status_code == 302
    created = challenge.phases.get(slug="final")
    assert (created.order, created.submission_total_limit, created.primary_metric) == (1, 10, "smape")
    assert AuditEvent.objects.filter(action="phase.create", target="phase final").exists()


def test_a_ranking_change_reranks_at_once(client, organizer, phase, eager_tasks, django_capture_on_commit_callbacks):
    from spinebench.submissions.services import create_submission
    from tests.platform.aasce_data import HIDDEN_ANGLES, predictions_csv

    close = {case: (a + 1.0, b + 1.0, c + 9.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}
    far = {case: (a + 5.0, b + 5.0, c + 1.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}
    made = {}
    for name, angles in (("close", close), ("far", far)):
        user = RegistrationFactory(challenge=phase.challenge).user
        with django_capture_on_commit_callbacks(execute=True):
            made[name] = create_submission(phase=phase, user=user, upload=SimpleUploadedFile(
                "p.csv", predictions_csv(angles), content_type="text/csv"))
    phase.primary_metric = "mae_pt"
    phase.save()
    from spinebench.challenges.signals import ranking_changed

    ranking_changed.send(sender=Phase, phase_pk=phase.pk)
    for submission in made.values():
        submission.refresh_from_db()
    assert (made["close"].evaluation.rank, made["far"].evaluation.rank) == (1, 2)
    client.force_login(organizer)
    edit = phase_form(slug=phase.slug, title=phase.title, primary_metric="mae_tl", extra_metrics="[]",
                      opens_at="", closes_at="", submission_total_limit="")
    response = client.post(reverse("organizers:phase-edit", args=[phase.challenge.slug, phase.pk]), edit)
    assert response.status_code == 302, response.context["form"].errors
    for submission in made.values():
        submission.evaluation.refresh_from_db()
    assert (made["close"].evaluation.rank, made["far"].evaluation.rank) == (2, 1)
    event = AuditEvent.objects.get(action="phase.update")
    assert event.changes["primary_metric"] == ["mae_pt", "mae_tl"]


def test_phases_move_up_and_down(client, organizer, phase):
    second = PhaseFactory(challenge=phase.challenge, order=5)
    third = PhaseFactory(challenge=phase.challenge, order=9)
    client.force_login(organizer)
    client.post(reverse("organizers:phase-move", args=[phase.challenge.slug, third.pk, "up"]))
    assert list(phase.challenge.phases.values_list("pk", flat=True)) == [phase.pk, third.pk, second.pk]
    assert list(phase.challenge.phases.values_list("order", flat=True)) == [0, 1, 2]


def test_registrations_are_decided_in_bulk_with_a_message(client, organizer, phase):
    challenge = phase.challenge
    pending = [RegistrationFactory(challenge=challenge, status=Registration.Status.PENDING) for _ in range(2)]
    foreign = RegistrationFactory(status=Registration.Status.PENDING)
    client.force_login(organizer)
    url = reverse("organizers:registrations", args=[challenge.slug])
    response = client.post(url, {"registrations": [pending[0].pk, foreign.pk], "decision": "approve"})
    assert response.status_code == 400
    assert Registration.objects.filter(status=Registration.Status.PENDING).count() == 3
    response = client.post(url, {"registrations": [r.pk for r in pending], "decision": "approve",
                                 "message": "Welcome aboard, read the rules."})
    assert response.status_code == 302
    for registration in pending:
        registration.refresh_from_db()
        assert registration.status == Registration.Status.APPROVED
        notice = Notification.objects.get(user=registration.user, kind="registration_approved")
        assert "Welcome aboard, read the rules." in notice.body
    assert AuditEvent.objects.filter(action="registration.approve").count() == 2


def test_audit_page_filters_and_is_for_organizers_only(client, organizer, phase):
    challenge = phase.challenge
    client.force_login(organizer)
    client.post(reverse("organizers:organizers", args=[challenge.slug]), {"user": UserFactory().username})
    client.post(reverse("organizers:phase-move", args=[challenge.slug, phase.pk, "down"]))  # no move: no event
    client.post(reverse("organizers:challenge", args=[challenge.slug]),
                challenge_form(slug=challenge.slug, title="Audited title"))
    page = client.get(reverse("organizers:audit", args=[challenge.slug]), {"action": "challenge.update"})
    text = page.content.decode()
    assert page.status_code == 200 and "Audited title" in text and "organizer.add" not in text.split("<tbody>")[1]
    participant = RegistrationFactory(challenge=challenge).user
    client.force_login(participant)
    assert client.get(reverse("organizers:audit", args=[challenge.slug])).status_code == 404


def test_admin_is_for_site_operators_only(client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.set([])
    client.force_login(staff)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:index")).status_code == 200


def test_participant_list_exports_as_csv_with_formulas_neutralised(client, organizer, phase):
    import csv

    challenge = phase.challenge
    tricky = RegistrationFactory(challenge=challenge, user__username="=HYPERLINK(1)",
                                 status=Registration.Status.REJECTED, decision_message="@SUM(A1)").user
    client.force_login(organizer)
    response = client.get(reverse("organizers:registrations-csv", args=[challenge.slug]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["username", "email", "status", "registered_at", "decision_message"]
    assert ["'=HYPERLINK(1)", "'" + tricky.email, "rejected"] == rows[-1][:3] and rows[-1][4] == "'@SUM(A1)"
    assert len(rows) == 1 + challenge.registrations.count()
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(organizer)
    exported = api.get(reverse("organizer-challenge-export-registrations", args=[challenge.slug]))
    assert exported.status_code == 200 and exported.content == response.content
