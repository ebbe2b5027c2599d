"""Organizers' decisions on registrations: approve or reject one or many at once, with an optional message that
travels with the notice (the notifications app sends "registration approved/rejected" when the status changes)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from spinebench.challenges.models import Challenge, Registration, RegistrationQuestion
from spinebench.challenges.signals import report_organizer_action
from spinebench.leaderboards.exports import safe_csv_cell

DECISIONS = {"approve": Registration.Status.APPROVED, "reject": Registration.Status.REJECTED}


@transaction.atomic
def decide_registrations(
    *, challenge: Challenge, actor, registration_pks: Iterable[int], decision: str, message: str = ""
) -> list[Registration]:
    """Set every named registration of `challenge` to the decision's status. A pk that is not a registration of this
    challenge refuses the whole batch (nothing changes)."""
    if decision not in DECISIONS:
        raise ValidationError({"decision": f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}"})
    wanted = sorted(set(registration_pks))
    if not wanted:
        raise ValidationError({"registrations": "Choose at least one registration."})
    found = list(
        challenge.registrations.select_for_update().select_related("user").filter(pk__in=wanted).order_by("pk")
    )
    missing = sorted(set(wanted) - {registration.pk for registration in found})
    if missing:
        raise ValidationError({"registrations": f"No registration of this challenge has the id {missing[0]}."})
    status = DECISIONS[decision]
    for registration in found:
        before = registration.status
        if before == status:
            continue
        registration.status = status
        registration.decision_message = message.strip()
        registration.save(update_fields=["status", "decision_message"])
        report_organizer_action(
            challenge=challenge, actor=actor, action=f"registration.{decision}",
            target=f"registration of {registration.user.get_username()}",
            changes={"status": [before, status.value]}, note=message.strip(),
        )
    return found


#: Columns of the participant export, in order; one column per registration question follows them.
EXPORT_COLUMNS = ("username", "email", "status", "registered_at", "decision_message")


def question_columns(challenge: Challenge) -> list[RegistrationQuestion]:
    """Every question a registration may have answered: the asked ones in order, then the removed (archived) ones,
    whose answers are kept."""
    return sorted(
        challenge.registration_questions.all(), key=lambda q: (q.removed_at is not None, q.order, q.pk)
    )


def question_title(question: RegistrationQuestion) -> str:
    return f"{question.label} (removed)" if question.removed_at else question.label


def registration_table(challenge: Challenge) -> tuple[list[RegistrationQuestion], list[tuple[Registration, list[str]]]]:
    """The question columns and every registration (pending first, newest first) with its answer to each column's
    question ("" where it gave none)."""
    questions = question_columns(challenge)
    registrations = challenge.registrations.select_related("user").prefetch_related("answers")
    rows = []
    for registration in registrations.order_by("status", "-created"):
        given = {answer.question_id: answer.value for answer in registration.answers.all()}
        rows.append((registration, [given.get(question.pk, "") for question in questions]))
    return questions, rows


def participant_rows(challenge: Challenge) -> list[list[str]]:
    """One row per registration (oldest first) under EXPORT_COLUMNS and one column per question, every cell made safe
    for spreadsheets (a cell that would start a formula gets a leading apostrophe: users choose their own names and
    answers)."""
    questions = question_columns(challenge)
    rows = [[safe_csv_cell(value) for value in (*EXPORT_COLUMNS, *map(question_title, questions))]]
    registrations = challenge.registrations.select_related("user").prefetch_related("answers")
    for registration in registrations.order_by("created", "pk"):
        given = {answer.question_id: answer.value for answer in registration.answers.all()}
        values = (registration.user.get_username(), registration.user.email, registration.status,
                  registration.created.isoformat(), registration.decision_message,
                  *(given.get(question.pk, "") for question in questions))
        rows.append([safe_csv_cell(value) for value in values])
    return rows


def participants_csv(challenge: Challenge) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(participant_rows(challenge))
    return buffer.getvalue()
