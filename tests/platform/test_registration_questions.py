"""Registration questions (issue 12 item 6): organizers define them (console and API, audited), the registration
form and the registration API ask them with field-keyed refusals, the answers are stored per registration and shown
to organizers on the registrations page, in the registrations API and in the participants CSV (one column per
question, formula cells neutralised). Editing keeps stored answers; removing an answered question archives it."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from spinebench.challenges.models import Registration, RegistrationAnswer, RegistrationQuestion
from spinebench.challenges.services import register
from spinebench.organizers.models import AuditEvent
from spinebench.organizers.questions import create_question, remove_question, update_question

from .conftest import api
from .factories import ChallengeFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer(db):
    return UserFactory(username="host")


@pytest.fixture
def challenge(organizer):
    return ChallengeFactory(organizers=[organizer], registration_mode="approval")


@pytest.fixture
def questions(challenge, organizer):
    """A required text question, a required choice, an optional checkbox and an optional text, in that order."""
    def add(**data):
        return create_question(challenge=challenge, actor=organizer, data=data)

    return {
        "affiliation": add(label="Your affiliation", kind="text", required=True),
        "role": add(label="Your role", kind="choice", options=["student", "clinician", "industry"], required=True),
        "news": add(label="Send me news", kind="checkbox", required=False),
        "note": add(label="Anything else?", kind="text", required=False),
    }


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def good_answers(questions) -> dict:
    return {questions["affiliation"].field_name: "Uni Bern", questions["role"].field_name: "clinician",
            questions["news"].field_name: True, questions["note"].field_name: ""}


def test_questions_are_ordered_and_audited(challenge, questions, organizer):
    assert [q.order for q in questions.values()] == [0, 1, 2, 3]
    events = AuditEvent.objects.filter(challenge=challenge, action="question.create")
    assert events.count() == 4
    first = events.get(target__contains="Your role")
    assert first.actor == organizer and first.changes["options"] == [None, ["student", "clinician", "industry"]]


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"label": "Pick", "kind": "choice", "options": ["only one"]}, "options", "at least two"),
    ({"label": "Pick", "kind": "choice", "options": ["a", "a"]}, "options", "once"),
    ({"label": "Tick", "kind": "checkbox", "options": ["x", "y"]}, "options", "no options"),
    ({"label": "", "kind": "text"}, "label", "blank"),
    ({"label": "x" * 301, "kind": "text"}, "label", "at most 300"),
    ({"label": "Odd", "kind": "essay"}, "kind", "not a valid choice"),
])
def test_bad_question_is_refused_by_field_and_nothing_is_stored(challenge, organizer, data, field, words):
    with pytest.raises(Exception) as raised:
        create_question(challenge=challenge, actor=organizer, data=data)
    assert field in raised.value.message_dict and words in " ".join(raised.value.message_dict[field])
    assert not RegistrationQuestion.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize(("key", "value", "words"), [
    ("affiliation", "", "needs an answer"),
    ("affiliation", "   ", "needs an answer"),
    ("affiliation", "x" * 2001, "At most 2000 characters"),
    ("role", "astronaut", "Choose one of: student, clinician, industry"),
    ("role", None, "needs an answer"),
    ("news", "maybe", "true or false"),
    ("note", ["a", "list"], "Answer with a text"),
])
def test_refused_answers_are_keyed_by_question_and_register_nothing(challenge, questions, key, value, words):
    answers = {**good_answers(questions), questions[key].field_name: value}
    user = UserFactory()
    with pytest.raises(Exception) as raised:
        register(challenge, user, answers=answers)
    errors = raised.value.message_dict
    assert list(errors) == [questions[key].field_name] and words in errors[questions[key].field_name][0]
    assert not Registration.objects.filter(user=user).exists() and not RegistrationAnswer.objects.exists()


def test_unknown_question_key_and_required_checkbox(challenge, questions, organizer):
    user = UserFactory()
    with pytest.raises(Exception) as raised:
        register(challenge, user, answers={**good_answers(questions), "question_999999": "x"})
    assert raised.value.message_dict == {"question_999999": ["This challenge asks no such question."]}
    consent = create_question(challenge=challenge, actor=organizer,
                              data={"label": "I agree to cite the paper", "kind": "checkbox", "required": True})
    with pytest.raises(Exception) as raised:
        register(challenge, user, answers=good_answers(questions))
    assert raised.value.message_dict == {consent.field_name: ["Tick this box to register."]}
    registration = register(challenge, user, answers={**good_answers(questions), consent.field_name: "on"})
    stored = {a.question.label: a.value for a in registration.answers.select_related("question")}
    assert stored == {"Your affiliation": "Uni Bern", "Your role": "clinician", "Send me news": "yes",
                      "Anything else?": "", "I agree to cite the paper": "yes"}


def test_registration_page_asks_refuses_then_stores(challenge, questions):
    user = UserFactory()
    client = signed_in(user)
    page = client.get(f"/challenges/{challenge.slug}/")
    assert "Your affiliation" in page.content.decode() and "clinician" in page.content.decode()
    form = {questions["role"].field_name: "student"}  # the required affiliation is missing
    refused = client.post(f"/challenges/{challenge.slug}/register/", form)
    assert refused.status_code == 400
    text = refused.content.decode()
    assert f'id="error_1_id_{questions["affiliation"].field_name}"' in text and "This field is required" in text
    assert not Registration.objects.filter(user=user).exists()
    form[questions["affiliation"].field_name] = "=cmd|' /C calc'!A0"
    form[questions["news"].field_name] = "on"
    done = client.post(f"/challenges/{challenge.slug}/register/", form)
    assert done.status_code == 302 and done["Location"] == f"/challenges/{challenge.slug}/"
    registration = Registration.objects.get(user=user)
    assert registration.status == Registration.Status.PENDING
    assert {a.question_id: a.value for a in registration.answers.all()} == {
        questions["affiliation"].pk: "=cmd|' /C calc'!A0", questions["role"].pk: "student",
        questions["news"].pk: "yes", questions["note"].pk: ""}
    # Registered: the form is gone and a second POST changes nothing.
    assert client.get(f"/challenges/{challenge.slug}/register/").status_code == 302
    client.post(f"/challenges/{challenge.slug}/register/", {questions["role"].field_name: "industry"})
    assert registration.answers.get(question=questions["role"]).value == "student"


def test_registration_api_lists_questions_and_takes_answers(challenge, questions):
    user = UserFactory()
    client = api(user)
    detail = client.get(f"/api/challenges/{challenge.slug}/").json()
    assert [(q["field_name"], q["kind"], q["required"]) for q in detail["registration_questions"]] == [
        (questions["affiliation"].field_name, "text", True), (questions["role"].field_name, "choice", True),
        (questions["news"].field_name, "checkbox", False), (questions["note"].field_name, "text", False)]
    refused = client.post(f"/api/challenges/{challenge.slug}/register/",
                          {"answers": {questions["role"].field_name: "pilot"}}, format="json")
    assert refused.status_code == 400
    assert set(refused.json()["answers"]) == {questions["affiliation"].field_name, questions["role"].field_name}
    assert not Registration.objects.filter(user=user).exists()
    done = client.post(f"/api/challenges/{challenge.slug}/register/", {"answers": good_answers(questions)},
                       format="json")
    assert done.status_code == 201 and done.json()["status"] == "pending"
    assert Registration.objects.get(user=user).answers.count() == 4


def test_organizer_sees_answers_on_page_api_and_csv(challenge, questions, organizer):
    applicant = UserFactory(username="applicant")
    answers = {**good_answers(questions), questions["affiliation"].field_name: "=HYPERLINK(\"http://x\")"}
    register(challenge, applicant, answers=answers)
    RegistrationFactory(challenge=challenge, user=UserFactory(username="early"))  # registered before the questions
    page = signed_in(organizer).get(f"/challenges/{challenge.slug}/manage/registrations/").content.decode()
    assert "Your role" in page and "clinician" in page and "=HYPERLINK(&quot;http://x&quot;)" in page
    rows = api(organizer).get(f"/api/organizers/challenges/{challenge.slug}/registrations/").json()
    by_user = {row["user"]: row["answers"] for row in rows}
    assert by_user["early"] == []
    assert [(a["label"], a["value"]) for a in by_user["applicant"]] == [
        ("Your affiliation", "=HYPERLINK(\"http://x\")"), ("Your role", "clinician"), ("Send me news", "yes"),
        ("Anything else?", "")]
    exported = signed_in(organizer).get(f"/challenges/{challenge.slug}/manage/registrations.csv").content.decode()
    table = list(csv.reader(io.StringIO(exported)))
    assert table[0] == ["username", "email", "status", "registered_at", "decision_message", "Your affiliation",
                        "Your role", "Send me news", "Anything else?"]
    rows_by_name = {row[0]: row for row in table[1:]}
    assert rows_by_name["applicant"][5:] == ["'=HYPERLINK(\"http://x\")", "clinician", "yes", ""]
    assert rows_by_name["early"][5:] == ["", "", "", ""]


def test_editing_keeps_answers_and_an_answered_kind_stays(challenge, questions, organizer):
    register(challenge, UserFactory(), answers=good_answers(questions))
    role = questions["role"]
    update_question(question=role, actor=organizer,
                    data={"label": "Your main role", "options": ["student", "researcher"]})
    answer = RegistrationAnswer.objects.get(question=role)
    assert answer.value == "clinician"  # kept as given, though no longer an option
    event = AuditEvent.objects.get(action="question.update")
    assert event.changes["label"] == ["Your role", "Your main role"]
    refused = api(organizer).patch(f"/api/organizers/questions/{role.pk}/", {"kind": "text"}, format="json")
    assert refused.status_code == 400 and "kind" in refused.json()
    role.refresh_from_db()
    assert role.kind == "choice"
    # An unanswered question may change its kind.
    fresh = create_question(challenge=challenge, actor=organizer, data={"label": "Team size", "kind": "text"})
    assert api(organizer).patch(f"/api/organizers/questions/{fresh.pk}/", {"kind": "choice", "options": ["1", "2+"]},
                                format="json").status_code == 200


def test_removing_archives_answered_and_deletes_unanswered(challenge, questions, organizer):
    applicant = UserFactory(username="applicant")
    register(challenge, applicant, answers=good_answers(questions))
    assert remove_question(question=questions["role"], actor=organizer) is False
    role = RegistrationQuestion.objects.get(pk=questions["role"].pk)
    assert role.removed_at is not None
    unanswered = create_question(challenge=challenge, actor=organizer, data={"label": "Later", "kind": "text"})
    response = api(organizer).delete(f"/api/organizers/questions/{unanswered.pk}/")
    assert response.status_code == 204 and not RegistrationQuestion.objects.filter(pk=unanswered.pk).exists()
    assert list(AuditEvent.objects.filter(action="question.remove").values_list("note", flat=True)) == [
        "deleted: nobody had answered it", "archived: its answers are kept"]
    # No longer asked; the answer stays in the export, under a column that says so.
    form_page = signed_in(UserFactory()).get(f"/challenges/{challenge.slug}/register/").content.decode()
    assert "Your role" not in form_page and "Your affiliation" in form_page
    exported = signed_in(organizer).get(f"/challenges/{challenge.slug}/manage/registrations.csv").content.decode()
    header, row = list(csv.reader(io.StringIO(exported)))
    assert header[-1] == "Your role (removed)" and row[-1] == "clinician"
    # A new registration does not answer it.
    register(challenge, UserFactory(), answers={k: v for k, v in good_answers(questions).items()
                                                if k != role.field_name})


def test_console_pages_add_edit_move_and_remove(challenge, organizer):
    client = signed_in(organizer)
    base = f"/challenges/{challenge.slug}/manage/questions/"
    refused = client.post(base, {"label": "Role", "kind": "choice", "options": "only\n", "required": "on"})
    assert refused.status_code == 400 and "at least two options" in refused.content.decode()
    assert client.post(base, {"label": "Role", "kind": "choice", "options": "student\nclinician\n",
                              "required": "on"}).status_code == 302
    assert client.post(base, {"label": "Site", "kind": "text"}).status_code == 302
    role, site = RegistrationQuestion.objects.order_by("order")
    assert role.options == ["student", "clinician"] and role.required and not site.required
    assert client.post(f"{base}{site.pk}/move/up/").status_code == 302
    assert list(RegistrationQuestion.objects.order_by("order").values_list("label", flat=True)) == ["Site", "Role"]
    edit = client.get(f"{base}{role.pk}/").content.decode()
    assert "student\nclinician" in edit
    assert client.post(f"{base}{role.pk}/", {"label": "Role now", "kind": "choice", "options": "a\nb",
                                             "required": "on"}).status_code == 302
    assert client.post(f"{base}{site.pk}/remove/").status_code == 302
    assert list(RegistrationQuestion.objects.values_list("label", flat=True)) == ["Role now"]
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {
        "question.create", "question.move", "question.update", "question.remove"}
    # Another challenge's organizer never reaches them.
    stranger = signed_in(UserFactory())
    assert stranger.get(f"{base}{role.pk}/").status_code == 404
    assert stranger.post(f"{base}{role.pk}/remove/").status_code == 404
    assert api(UserFactory()).get(f"/api/organizers/questions/{role.pk}/").status_code == 404


def test_deleting_a_challenge_deletes_its_questions_and_answers(challenge, questions):
    register(challenge, UserFactory(), answers=good_answers(questions))
    assert RegistrationAnswer.objects.count() == 4
    challenge.delete()
    assert not RegistrationAnswer.objects.exists() and not RegistrationQuestion.objects.exists()
