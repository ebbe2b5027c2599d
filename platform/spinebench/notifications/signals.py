"""Notifications from status changes, without touching the code that makes them: pre_save reads the stored status,
post_save notifies when the save changed it to one we report (so re-saving an unchanged status never notifies)."""

from __future__ import annotations

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.urls import reverse

from spinebench.challenges.models import Registration
from spinebench.submissions.models import Submission
from spinebench.submissions.status import Status
from spinebench.teams.signals import invitation_answered, invitation_sent

from .kinds import Kind
from .services import notify

_BEFORE = "_notifications_status_before_save"


@receiver(pre_save, sender=Submission)
@receiver(pre_save, sender=Registration)
def remember_status(sender, instance, update_fields=None, **kwargs):
    """The status in the database just before this save (one indexed read, only for saves that write status)."""
    if instance._state.adding or instance.pk is None or (update_fields is not None and "status" not in update_fields):
        setattr(instance, _BEFORE, None)
        return
    setattr(instance, _BEFORE, sender.objects.filter(pk=instance.pk).values_list("status", flat=True).first())


def _changed_to(instance, created: bool) -> str | None:
    """The new status when this save changed it (or created the row with it), else None."""
    before = getattr(instance, _BEFORE, None)
    setattr(instance, _BEFORE, None)
    if created:
        return instance.status
    if before is None or before == instance.status:
        return None
    return instance.status


@receiver(post_save, sender=Submission)
def submission_saved(sender, instance: Submission, created, update_fields=None, **kwargs):
    if update_fields is not None and "status" not in update_fields:
        return
    status = _changed_to(instance, created)
    if status not in (Status.SUCCEEDED, Status.FAILED) or instance.is_baseline or instance.creator_id is None:
        return
    phase = instance.phase
    where = f"{phase.challenge.title} / {phase.title}"
    if status == Status.SUCCEEDED:
        notify(
            user=instance.creator, kind=Kind.SUBMISSION_SUCCEEDED, link=instance.get_absolute_url(),
            title=f"Submission {instance.pk} finished", body=f"Your submission {instance.pk} to {where} was scored.",
        )
    else:
        # error_message is the participant-facing line (the scoring code never puts hidden data there).
        error = (instance.error_message or "no reason was recorded").strip()
        notify(
            user=instance.creator, kind=Kind.SUBMISSION_FAILED, link=instance.get_absolute_url(),
            title=f"Submission {instance.pk} failed", body=f"Your submission {instance.pk} to {where} failed:\n{error}",
        )


def _with_message(body: str, message: str) -> str:
    """The notice's text, followed by the organizer's own message when they wrote one."""
    return f"{body}\n\nMessage from the organizers:\n{message}" if message.strip() else body


@receiver(post_save, sender=Registration)
def registration_saved(sender, instance: Registration, created, update_fields=None, **kwargs):
    if created or (update_fields is not None and "status" not in update_fields):
        return  # a registration approved at once needs no notice: the page that made it says so
    status = _changed_to(instance, created)
    challenge = instance.challenge
    if status == Registration.Status.APPROVED:
        notify(
            user=instance.user, kind=Kind.REGISTRATION_APPROVED, link=challenge.get_absolute_url(),
            title=f"Registration for {challenge.title} approved",
            body=_with_message(f"You can now submit to {challenge.title}.", instance.decision_message),
        )
    elif status == Registration.Status.REJECTED:
        notify(
            user=instance.user, kind=Kind.REGISTRATION_REJECTED, link=challenge.get_absolute_url(),
            title=f"Registration for {challenge.title} rejected",
            body=_with_message(
                f"An organizer of {challenge.title} did not approve your registration.", instance.decision_message
            ),
        )


@receiver(invitation_sent)
def team_invitation_sent(sender, invitation, **kwargs):
    team = invitation.team
    challenge = team.challenge
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "A team leader"
    notify(
        user=invitation.invitee, kind=Kind.TEAM_INVITATION, link=team.get_absolute_url(),
        title=f"Invitation to team {team.name} of {challenge.title}",
        body=f"{inviter} invites you to join team {team.name} of {challenge.title}. Accept or decline on the "
        f"challenge's teams page: {reverse('teams:list', kwargs={'slug': challenge.slug})}\n"
        "Joining needs a verified email address and an approved registration for the challenge.",
    )


@receiver(invitation_answered)
def team_invitation_answered(sender, invitation, **kwargs):
    """The team's leader hears that an invitee joined or declined (nobody to tell once every member left)."""
    team = invitation.team
    if team.leader is None:
        return
    who = invitation.invitee.get_username()
    if invitation.status == invitation.Status.ACCEPTED:
        answer, next_step = "accepted", f"{who} is now a member of team {team.name}."
    else:
        answer, next_step = "declined", "You may invite someone else on the team's page."
    notify(
        user=team.leader, kind=Kind.TEAM_INVITATION_ANSWERED, link=team.get_absolute_url(),
        title=f"{who} {answer} the invitation to team {team.name}",
        body=f"{who} {answer} your invitation to team {team.name} of {team.challenge.title}. {next_step}",
    )
