"""Registration questions: which ones a challenge asks now, and the checking and storing of a registration's answers.

Answers arrive keyed by each question's `field_name` (`question_<id>`), from the registration form and the API alike;
every error is keyed the same way. A checkbox answer is stored as "yes" or "no"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from .models import Challenge, Registration, RegistrationAnswer, RegistrationQuestion

TRUE_WORDS = {"yes", "true", "on", "1"}
FALSE_WORDS = {"no", "false", "off", "0", ""}


def asked_questions(challenge: Challenge):
    """The questions a registration answers now, in order (archived ones are no longer asked)."""
    return challenge.registration_questions.filter(removed_at__isnull=True).order_by("order", "pk")


def _checkbox(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    return False if text in FALSE_WORDS else None


def _clean_one(question: RegistrationQuestion, value: Any) -> str:
    """The stored text of one answer, or a ValidationError message."""
    if question.kind == RegistrationQuestion.Kind.CHECKBOX:
        ticked = _checkbox(value)
        if ticked is None:
            raise ValidationError("Answer with true or false.")
        if question.required and not ticked:
            raise ValidationError("Tick this box to register.")
        return "yes" if ticked else "no"
    if value is None:
        value = ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValidationError("Answer with a text.")
    text = str(value).strip()
    if not text:
        if question.required:
            raise ValidationError("This question needs an answer.")
        return ""
    if question.kind == RegistrationQuestion.Kind.CHOICE and text not in question.options:
        raise ValidationError(f"Choose one of: {', '.join(question.options)}.")
    if len(text) > RegistrationQuestion.ANSWER_MAX_LENGTH:
        raise ValidationError(f"At most {RegistrationQuestion.ANSWER_MAX_LENGTH} characters (got {len(text)}).")
    return text


def clean_answers(challenge: Challenge, answers: Mapping[str, Any] | None) -> dict[RegistrationQuestion, str]:
    """Every asked question with its stored text, or one ValidationError naming each question at fault (by its
    field name) and each key that names no asked question."""
    answers = dict(answers or {})
    errors: dict[str, list[str]] = {}
    cleaned = {}
    questions = list(asked_questions(challenge))
    for question in questions:
        try:
            cleaned[question] = _clean_one(question, answers.get(question.field_name))
        except ValidationError as error:
            errors[question.field_name] = error.messages
    for key in sorted(set(answers) - {question.field_name for question in questions}):
        errors[key] = ["This challenge asks no such question."]
    if errors:
        raise ValidationError(errors)
    return cleaned


def store_answers(registration: Registration, cleaned: Mapping[RegistrationQuestion, str]) -> None:
    RegistrationAnswer.objects.bulk_create(
        [RegistrationAnswer(registration=registration, question=question, value=value)
         for question, value in cleaned.items()]
    )


def answers_by_question(registration: Registration) -> dict[int, str]:
    """question pk -> stored answer text (prefetch `answers` for many registrations)."""
    return {answer.question_id: answer.value for answer in registration.answers.all()}
