"""The organizers' registration questions: add, edit, move and remove, each audited with the fields it changed.

Rules that keep stored answers meaningful: an answered question keeps its kind (its answers would no longer fit);
editing the label, hint, options or `required` keeps every stored answer as it was given; removing a question that
has answers archives it (no longer asked, its answers stay on the registrations page, in the API and the CSV
export), removing an unanswered one deletes it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from spinebench.challenges.models import Challenge, RegistrationQuestion
from spinebench.challenges.signals import report_organizer_action

from .changes import changed, field_values

#: What an organizer sets on a question.
QUESTION_FIELDS = ("label", "help_text", "kind", "options", "required")


def _apply(question: RegistrationQuestion, data: dict[str, Any]) -> None:
    unknown = set(data) - set(QUESTION_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})
    for name, value in data.items():
        setattr(question, name, value)


def _target(question: RegistrationQuestion) -> str:
    return f"question {question.pk}: {question.label}"


@transaction.atomic
def create_question(*, challenge: Challenge, actor, data: dict[str, Any]) -> RegistrationQuestion:
    """A new question, last in the challenge's order."""
    challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    last = challenge.registration_questions.aggregate(last=Max("order"))["last"]
    question = RegistrationQuestion(challenge=challenge, order=0 if last is None else last + 1)
    _apply(question, data)
    question.full_clean()
    question.save()
    report_organizer_action(
        challenge=challenge, actor=actor, action="question.create", target=_target(question),
        changes=changed({}, field_values(question, QUESTION_FIELDS)),
    )
    return question


@transaction.atomic
def update_question(*, question: RegistrationQuestion, actor, data: dict[str, Any]) -> RegistrationQuestion:
    question = RegistrationQuestion.objects.select_for_update().select_related("challenge").get(pk=question.pk)
    if question.removed_at is not None:
        raise ValidationError({"label": "This question was removed; add a new one instead."})
    before = field_values(question, QUESTION_FIELDS)
    _apply(question, data)
    if question.kind != before["kind"] and question.answers.exists():
        raise ValidationError({"kind": "This question has answers: its kind cannot change. Add a new question."})
    question.full_clean()
    question.save()
    changes = changed(before, field_values(question, QUESTION_FIELDS))
    if changes:
        report_organizer_action(
            challenge=question.challenge, actor=actor, action="question.update", target=_target(question),
            changes=changes,
        )
    return question


@transaction.atomic
def remove_question(*, question: RegistrationQuestion, actor) -> bool:
    """Delete an unanswered question (True) or archive an answered one (False: its answers are kept)."""
    question = RegistrationQuestion.objects.select_for_update().select_related("challenge").get(pk=question.pk)
    challenge, target = question.challenge, _target(question)
    if question.removed_at is not None:
        raise ValidationError({"question": "This question was already removed."})
    answered = question.answers.exists()
    if answered:
        question.removed_at = timezone.now()
        question.save(update_fields=["removed_at"])
    else:
        question.delete()
    report_organizer_action(
        challenge=challenge, actor=actor, action="question.remove", target=target,
        note="archived: its answers are kept" if answered else "deleted: nobody had answered it",
    )
    return not answered


@transaction.atomic
def move_question(*, question: RegistrationQuestion, actor, offset: int) -> None:
    """Swap the question with its neighbour among the asked questions (nothing happens at either end)."""
    challenge = Challenge.objects.select_for_update().get(pk=question.challenge_id)
    ordered = list(challenge.registration_questions.filter(removed_at__isnull=True).order_by("order", "pk"))
    index = next((i for i, item in enumerate(ordered) if item.pk == question.pk), None)
    if index is None or not 0 <= index + offset < len(ordered):
        return
    ordered[index], ordered[index + offset] = ordered[index + offset], ordered[index]
    for position, item in enumerate(ordered):
        if item.order != position:
            item.order = position
            item.save(update_fields=["order"])
    report_organizer_action(
        challenge=challenge, actor=actor, action="question.move", target=_target(question),
        changes={"position": [index + 1, index + offset + 1]},
    )
