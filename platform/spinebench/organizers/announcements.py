"""The organizers' announcements: post, edit and delete news on the challenge page, each audited. Posting with
`email_participants` asks the notifications app to tell the approved participants in a background task (on the site,
and by email as each one's preferences allow); an edit never notifies again."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from spinebench.challenges.models import Announcement, Challenge
from spinebench.challenges.signals import report_organizer_action
from spinebench.notifications.announcements import announce_later

from .changes import changed, field_values

#: What an organizer writes; `email_participants` is chosen when posting only.
ANNOUNCEMENT_FIELDS = ("title", "body")


def _apply(announcement: Announcement, data: dict[str, Any]) -> None:
    unknown = set(data) - set(ANNOUNCEMENT_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})
    for name, value in data.items():
        setattr(announcement, name, value.strip() if isinstance(value, str) else value)
    for name in ANNOUNCEMENT_FIELDS:
        if not getattr(announcement, name):
            raise ValidationError({name: "This field cannot be empty."})


@transaction.atomic
def post_announcement(
    *, challenge: Challenge, actor, data: dict[str, Any], email_participants: bool = False
) -> Announcement:
    announcement = Announcement(challenge=challenge, author=actor, email_participants=email_participants)
    _apply(announcement, data)
    announcement.full_clean(exclude=["author"])
    announcement.save()
    report_organizer_action(
        challenge=challenge, actor=actor, action="announcement.post", target=f"announcement {announcement.pk}",
        changes=changed({}, field_values(announcement, (*ANNOUNCEMENT_FIELDS, "email_participants"))),
    )
    if email_participants:
        announce_later(announcement)
    return announcement


@transaction.atomic
def update_announcement(*, announcement: Announcement, actor, data: dict[str, Any]) -> Announcement:
    announcement = Announcement.objects.select_for_update().select_related("challenge").get(pk=announcement.pk)
    before = field_values(announcement, ANNOUNCEMENT_FIELDS)
    _apply(announcement, data)
    announcement.full_clean(exclude=["author"])
    announcement.save()
    changes = changed(before, field_values(announcement, ANNOUNCEMENT_FIELDS))
    if changes:
        report_organizer_action(
            challenge=announcement.challenge, actor=actor, action="announcement.update",
            target=f"announcement {announcement.pk}", changes=changes,
        )
    return announcement


@transaction.atomic
def delete_announcement(*, announcement: Announcement, actor) -> None:
    challenge, pk, title = announcement.challenge, announcement.pk, announcement.title
    announcement.delete()
    report_organizer_action(
        challenge=challenge, actor=actor, action="announcement.delete", target=f"announcement {pk}",
        changes={"title": [title, None]},
    )
