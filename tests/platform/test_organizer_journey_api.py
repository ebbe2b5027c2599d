"""The organizer's whole journey through the REST API with token auth, as a user without staff rights (issue 12's
"Done when"): import a challenge from a bundle zip, edit its phase (blind), add a registration question and terms,
approve a registration that answered and accepted, monitor, hide and restore a submission, re-score the phase and
reveal the blind leaderboard. Expected scores come from the test's own SMAPE over the hidden angles it reads from the
private dataset folder, never from the platform's evaluator."""

from __future__ import annotations

import csv

import pytest

from spinebench.challenges.models import Challenge
from spinebench.organizers.models import AuditEvent

from .aasce_data import predictions_csv, smape
from .conftest import api, csv_upload
from .factories import UserFactory
from .test_bundle_upload import bundle, zipped

pytestmark = pytest.mark.django_db


def journey_bundle() -> dict:
    """The upload tests' small generated bundle, with registrations waiting for an organizer."""
    return bundle(slug="journey", title="Journey challenge", registration_mode="approval")


def hidden_angles(phase) -> dict[str, tuple[float, float, float]]:
    """The generated test split's hidden angles, read as plain CSV from the private dataset folder."""
    with (phase.dataset.ground_truth_dir / "angles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {row["case_id"]: (float(row["pt"]), float(row["mt"]), float(row["tl"])) for row in rows}


def shifted(angles: dict, by: float) -> dict:
    return {case: tuple(value + by for value in values) for case, values in angles.items()}


def test_the_organizer_journey_through_the_api(eager_tasks, django_capture_on_commit_callbacks):
    host = UserFactory(username="host")
    assert not host.is_staff and not host.is_superuser
    organizer = api(host)

    # (1) a challenge from a bundle zip, generated in the background; the uploader is its only organizer
    with django_capture_on_commit_callbacks(execute=True):
        imported = organizer.post("/api/challenges/import/", {"bundle": zipped(journey_bundle())}, format="multipart")
    assert imported.status_code == 202, imported.content
    job = organizer.get(f"/api/organizers/imports/{imported.json()['id']}/").json()
    assert (job["status"], job["progress"], job["error"]) == ("succeeded", 100, "")
    challenge = Challenge.objects.get(slug="journey")
    assert list(challenge.organizers.all()) == [host] and challenge.registration_mode == "approval"
    listed = organizer.get("/api/organizers/challenges/").json()
    assert [row["slug"] for row in listed] == ["journey"]
    phases = organizer.get("/api/organizers/challenges/journey/phases/").json()
    assert [(row["slug"], row["score_visibility"]) for row in phases] == [("test", "public")]
    phase_id = phases[0]["id"]
    phase = challenge.phases.get()
    truth = hidden_angles(phase)
    assert len(truth) == 2

    # (2) edit the phase: a bad date pair is refused by field and changes nothing; then blind, with a closing date
    url = f"/api/organizers/phases/{phase_id}/"
    bad = organizer.patch(url, {"opens_at": "2031-01-02T00:00:00Z", "closes_at": "2031-01-01T00:00:00Z",
                                "score_visibility": "blind"}, format="json")
    assert bad.status_code == 400 and "closes_at" in bad.json()
    assert organizer.get(url).json()["score_visibility"] == "public"
    edited = organizer.patch(url, {"score_visibility": "blind", "closes_at": "2031-06-30T12:00:00Z"}, format="json")
    assert edited.status_code == 200, edited.json()
    assert (edited.json()["score_visibility"], edited.json()["closes_at"]) == ("blind", "2031-06-30T12:00:00Z")

    # (3) a required question and the terms
    question = organizer.post("/api/organizers/challenges/journey/questions/",
                              {"label": "Your institution", "kind": "text", "required": True}, format="json")
    assert question.status_code == 201, question.json()
    field = question.json()["field_name"]
    terms = organizer.post("/api/organizers/challenges/journey/terms/", {"text": "Use the data for research only."},
                           format="json")
    assert terms.status_code == 201 and terms.json()["version"] == 1

    # (4) a participant registers: refused without the answer, pending with it; submitting waits for the terms
    person = UserFactory(username="runner")
    participant = api(person)
    asked = participant.get("/api/challenges/journey/").json()["registration_questions"]
    assert [(row["field_name"], row["required"]) for row in asked] == [(field, True)]
    unanswered = participant.post("/api/challenges/journey/register/", {"answers": {}}, format="json")
    assert unanswered.status_code == 400 and list(unanswered.json()["answers"]) == [field]
    registered = participant.post("/api/challenges/journey/register/", {"answers": {field: "Uni Bern"}},
                                  format="json")
    assert registered.status_code == 201 and registered.json()["status"] == "pending"
    pending = participant.post(f"/api/phases/{phase_id}/submissions/", {"file": csv_upload(truth)},
                               format="multipart")
    assert pending.status_code == 403 and pending.json()["code"] == "not_participant"

    # (5) the organizer sees the answer and approves
    rows = organizer.get("/api/organizers/challenges/journey/registrations/", {"status": "pending"}).json()
    assert [(row["user"], [(a["label"], a["value"]) for a in row["answers"]]) for row in rows] == [
        ("runner", [("Your institution", "Uni Bern")])]
    decided = organizer.post("/api/organizers/challenges/journey/registrations/decide/",
                             {"registrations": [rows[0]["id"]], "decision": "approve"}, format="json")
    assert decided.status_code == 200 and decided.json()[0]["status"] == "approved"
    no_terms = participant.post(f"/api/phases/{phase_id}/submissions/", {"file": csv_upload(truth)},
                                format="multipart")
    assert no_terms.status_code == 403 and no_terms.json()["code"] == "terms"
    accepted = participant.post("/api/challenges/journey/terms/accept/")
    assert accepted.status_code == 200 and accepted.json()["version"] == 1

    # (6) a submission is scored; the blind phase shows only its status
    predicted = shifted(truth, 1.5)
    with django_capture_on_commit_callbacks(execute=True):
        submitted = participant.post(f"/api/phases/{phase_id}/submissions/",
                                     {"file": csv_upload(content=predictions_csv(predicted))}, format="multipart")
    assert submitted.status_code == 201, submitted.json()
    submission_id = submitted.json()["id"]
    own = participant.get(f"/api/submissions/{submission_id}/").json()
    assert (own["status"], own["rank"], own["aggregates"]) == ("succeeded", None, None)
    assert participant.get(f"/api/phases/{phase_id}/leaderboard/").status_code == 403
    expected = smape(truth, predicted)

    # (7) the monitor: filters, the detail with its history, hide with a reason the submitter reads, restore
    monitor = "/api/monitor/submissions/"
    assert participant.get(monitor, {"challenge": "journey"}).status_code == 404
    failed = organizer.get(monitor, {"challenge": "journey", "status": "failed"}).json()
    assert failed == []
    found = organizer.get(monitor, {"challenge": "journey", "status": "succeeded", "participant": "runner"}).json()
    assert [(row["id"], row["participant"]) for row in found] == [(submission_id, "runner")]
    assert found[0]["evaluation"]["aggregates"]["smape"] == pytest.approx(expected, abs=1e-3)
    detail = organizer.get(f"{monitor}{submission_id}/").json()
    assert (detail["logs"], detail["history"]) == ([], [])  # a CSV phase runs no container; no past evaluation yet
    blank = organizer.post(f"{monitor}{submission_id}/hide/", {"reason": " "}, format="json")
    assert blank.status_code == 400 and "reason" in blank.json()
    hidden = organizer.post(f"{monitor}{submission_id}/hide/", {"reason": "copied predictions"}, format="json")
    assert hidden.status_code == 200 and hidden.json()["hidden_from_leaderboard"] is True
    assert participant.get(f"/api/submissions/{submission_id}/").json()["hidden_reason"] == "copied predictions"
    restored = organizer.post(f"{monitor}{submission_id}/restore/")
    assert restored.status_code == 200 and restored.json()["hidden_from_leaderboard"] is False
    assert participant.get(f"/api/submissions/{submission_id}/").json()["hidden_reason"] == ""

    # (8) re-score the phase: one job, a new evaluation version, same score
    refused = participant.post("/api/rescore-jobs/", {"phase": phase_id}, format="json")
    assert refused.status_code == 400 and "phase" in refused.json()
    with django_capture_on_commit_callbacks(execute=True):
        rescore = organizer.post("/api/rescore-jobs/", {"phase": phase_id, "note": "labels checked"}, format="json")
    assert rescore.status_code == 201, rescore.json()
    job = organizer.get(f"/api/rescore-jobs/{rescore.json()['id']}/").json()
    assert (job["status"], job["scored"], job["total"], job["to_version"]) == ("succeeded", 1, 1, 2)
    after = organizer.get(f"{monitor}{submission_id}/").json()
    assert after["evaluation"]["version"] == 2 and [row["version"] for row in after["history"]] == [1]
    assert after["evaluation"]["aggregates"]["smape"] == pytest.approx(expected, abs=1e-3)
    still_blind = participant.get(f"/api/submissions/{submission_id}/").json()
    assert (still_blind["rank"], still_blind["aggregates"]) == (None, None)

    # (9) reveal: the participant now reads the score and the rank
    assert participant.post(f"/api/phases/{phase_id}/reveal/").status_code == 404
    revealed = organizer.post(f"/api/phases/{phase_id}/reveal/")
    assert revealed.status_code == 200 and revealed.json()["scores_revealed_at"]
    mine = participant.get(f"/api/submissions/{submission_id}/").json()
    assert mine["rank"] == 1 and mine["aggregates"]["smape"] == pytest.approx(expected, abs=1e-3)
    board = participant.get(f"/api/phases/{phase_id}/leaderboard/")
    assert board.status_code == 200, board.content
    [row] = board.json()["rows"]
    assert (row["participant"], row["rank"]) == ("runner", 1) and row["smape"] == pytest.approx(expected, abs=1e-3)

    actions = set(AuditEvent.objects.filter(challenge=challenge).values_list("action", flat=True))
    assert {"challenge.import", "phase.update", "registration.approve", "submission.hide", "submission.restore",
            "leaderboard.reveal"} <= actions
