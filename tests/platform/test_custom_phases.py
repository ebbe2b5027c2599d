"""Custom phases without an engine: the metric declaration (API and page; field-keyed refusals that change nothing),
the phase's leaderboard following its declaration (columns, directions, titles, ranking) and the statistics'
view of per-case versus set-level metrics of an image. The container side is tested in
tests/containers/test_evaluation_images.py."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from spinebench.challenges import registry
from spinebench.evaluation.declarations import follow_declaration
from spinebench.evaluation.images import DeclaredMetric, phase_declaration
from spinebench.organizers.models import AuditEvent
from spinebench.submissions.models import Evaluation, Submission

from .factories import PhaseFactory, UserFactory

pytestmark = pytest.mark.django_db

METRICS = [
    {"key": "abs_error", "label": "Absolute error (mm)", "direction": "lower", "primary": True, "scope": "case"},
    {"key": "hit_rate", "label": "Hit rate", "direction": "higher", "primary": False, "scope": "aggregate"},
]


@pytest.fixture
def organizer_api():
    phase = PhaseFactory()
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    api = APIClient()
    api.force_authenticate(organizer)
    api.phase, api.organizer = phase, organizer
    return api


def put(api, **payload):
    return api.put(f"/api/phases/{api.phase.pk}/metric-declaration/",
                   {"metrics": METRICS, "predictions_format": "csv", **payload}, format="json")


@pytest.mark.parametrize("payload, field, message", [
    ({"metrics": []}, "metrics", "declare at least one metric"),
    ({"metrics": [{**METRICS[0], "primary": False}, METRICS[1]]}, "metrics", "exactly one metric must be the primary"),
    ({"metrics": [METRICS[0], {**METRICS[1], "key": "abs_error"}]}, "metrics", "declared twice"),
    ({"metrics": [{**METRICS[0], "key": "9lives"}]}, "metrics", "9lives"),
    ({"metrics": [{**METRICS[0], "direction": "up"}]}, "metrics", "direction"),
    ({"metrics": [{**METRICS[0], "scope": "group"}]}, "metrics", "scope"),
    ({"predictions_format": "xlsx"}, "predictions_format", "xlsx"),
    ({"output_files": ["../etc/passwd"]}, "output_files", "plain file name"),
])
def test_bad_declarations_are_refused_by_field_and_change_nothing(organizer_api, payload, field, message):
    assert put(organizer_api).status_code == 200
    before = list(DeclaredMetric.objects.values_list("key", "direction", "primary", "scope"))
    response = put(organizer_api, **payload)
    assert response.status_code == 400, response.content
    assert message in str(response.json()[field])
    assert list(DeclaredMetric.objects.values_list("key", "direction", "primary", "scope")) == before


def test_declaration_is_stored_audited_and_a_custom_phase_follows_it(organizer_api):
    phase = organizer_api.phase
    response = put(organizer_api)
    assert response.status_code == 200
    assert response.json()["metrics"] == METRICS and response.json()["task"] == "aasce-cobb"
    phase.refresh_from_db()
    assert phase.task == "aasce-cobb" and phase.ranking_metric == "smape"  # a built-in phase keeps its task
    assert AuditEvent.objects.filter(action="phase.metrics_declared", challenge=phase.challenge).count() == 1
    follow_declaration(phase, phase_declaration(phase))  # what uploading an evaluation image does
    phase.refresh_from_db()
    assert (phase.task, phase.ranking_metric, phase.leaderboard_metrics) == ("custom", "abs_error",
                                                                             ["abs_error", "hit_rate"])
    assert (phase.direction("abs_error"), phase.direction("hit_rate@young")) == ("lower", "higher")
    assert phase.metric_title("hit_rate@young") == "Hit rate · young"
    assert phase.takes_csv
    assert registry.is_case_mean(phase, "abs_error") and not registry.is_case_mean(phase, "hit_rate")
    # Declaring again re-follows: a dropped metric leaves the columns, the new primary ranks.
    assert put(organizer_api, metrics=[{**METRICS[1], "primary": True}]).status_code == 200
    phase.refresh_from_db()
    assert (phase.ranking_metric, phase.extra_metrics) == ("hit_rate", [])
    with pytest.raises(Exception, match="not declared"):
        phase.direction("abs_error")


def test_custom_leaderboard_ranks_by_the_declared_direction(organizer_api):
    phase = organizer_api.phase
    put(organizer_api)
    follow_declaration(phase, phase_declaration(phase))
    values = {"low": 1.5, "high": 9.0, "middle": 4.0}
    submissions = {}
    for name, error in values.items():
        submission = Submission.objects.create(phase=phase, creator=UserFactory(username=f"custom-{name}"),
                                               status="succeeded")
        Evaluation.objects.create(submission=submission,
                                  metrics={"case": {}, "aggregates": {"abs_error": error, "hit_rate": 0.5}})
        submissions[name] = submission
    from spinebench.challenges.signals import ranking_changed

    ranking_changed.send(sender=None, phase_pk=phase.pk)
    ranks = {name: Evaluation.objects.get(submission=s).rank for name, s in submissions.items()}
    assert ranks == {"low": 1, "middle": 2, "high": 3}  # lower is better, as declared
    board = organizer_api.get(f"/api/phases/{phase.pk}/leaderboard/").json()
    assert board["metrics"] == ["abs_error", "hit_rate"]
    page = organizer_api.get(phase.get_absolute_url()).content.decode()
    assert "Absolute error (mm)" in page
    detail = organizer_api.get(reverse("submissions:detail", kwargs={"pk": submissions["low"].pk}))
    assert detail.status_code == 200 and "Absolute error (mm)" in detail.content.decode()


def test_organizer_page_declares_metrics_line_by_line(client):
    phase = PhaseFactory()
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    client.force_login(organizer)
    kwargs = {"challenge": phase.challenge.slug, "phase": phase.slug}
    page = client.get(reverse("evaluation_images:page", kwargs=kwargs))
    assert page.status_code == 200 and "No evaluation image uploaded yet." in page.content.decode()
    response = client.post(reverse("evaluation_images:declare", kwargs=kwargs), {
        "metrics": "abs_error, Absolute error, lower, case, primary\nhit_rate, Hit rate, higher, aggregate",
        "predictions_format": "csv", "output_files": ""})
    assert response.status_code == 302
    assert list(DeclaredMetric.objects.values_list("key", "primary", "scope")) == [
        ("abs_error", True, "case"), ("hit_rate", False, "aggregate")]
    response = client.post(reverse("evaluation_images:declare", kwargs=kwargs), {
        "metrics": "abs_error, Absolute error, lower", "predictions_format": "csv"})
    assert response.status_code == 400
    assert "line 1: expected key, label, direction, scope[, primary]" in response.content.decode()
    assert DeclaredMetric.objects.count() == 2
    response = client.post(reverse("evaluation_images:upload", kwargs=kwargs), {})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    page = client.get(reverse("evaluation_images:page", kwargs=kwargs)).content.decode()
    assert "abs_error, Absolute error, lower, case, primary" in page
    client.force_login(UserFactory())
    assert client.get(reverse("evaluation_images:page", kwargs=kwargs)).status_code == 404


def test_custom_phase_without_an_image_fails_its_submissions_with_the_reason(organizer_api, eager_tasks,
                                                                             django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from spinebench.challenges.models import Registration
    from spinebench.submissions.services import create_submission
    from spinebench.workers.services import phase_unserved_message, record_heartbeat

    phase = organizer_api.phase
    put(organizer_api)
    follow_declaration(phase, phase_declaration(phase))
    record_heartbeat(hostname="this-test@host", queues=["containers-cpu"])  # the queue a custom phase's scoring uses
    assert phase_unserved_message(phase) == ""
    participant = UserFactory()
    Registration.objects.create(challenge=phase.challenge, user=participant, status=Registration.Status.APPROVED)
    upload = SimpleUploadedFile("lengths.csv", b"case_id,length_mm\ncase_a,1\n", content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(phase=phase, user=participant, upload=upload)
    submission.refresh_from_db()
    assert submission.status == "failed"
    assert submission.error_message == "This phase has no evaluation image yet; the organizers have been told."
