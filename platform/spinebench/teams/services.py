"""Team actions: create, invite (by username or email), accept, decline, withdraw, leave, hand leadership on, and
the organizers' team-size cap. Who may ask for each action is the access policy's question
(`spinebench.access.teams`); these functions check the state (one team per user and challenge, the cap, a verified
email address before joining) and raise `TeamError` with the form field at fault.

Rules:
- Joining a team (creating one, or accepting an invitation) needs an approved registration for the challenge and a
  verified email address, and the user must not be in another team of that challenge.
- A team never grows past the challenge's cap (`TeamSettings.max_team_size`): n_members + 1 <= cap when joining.
- Joining after submitting: the member's earlier submissions of the challenge that belong to no team move to the
  team (the submissions app does it on `member_joined`) and count against the team's limit from then on.
- Leaving: submissions made as a member stay with the team (its entry and its limit); the leader hands leadership on
  before leaving while others remain; when the last member leaves, the team keeps its entry but takes nobody new
  (its pending invitations are withdrawn).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from spinebench.accounts.profiles import has_verified_email
from spinebench.challenges.models import Challenge, Registration
from spinebench.challenges.signals import report_organizer_action

from .models import Invitation, Membership, Team, TeamSettings
from .signals import invitation_answered, invitation_sent, member_joined


class TeamError(Exception):
    """A team action refused; `field` names the input at fault ("__all__" when none), `code` the reason."""

    def __init__(self, message: str, *, field: str = "__all__", code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code

    def as_dict(self) -> dict:
        return {self.field: [str(self)], "code": self.code}


def team_of(*, challenge, user) -> Team | None:
    """The user's team in `challenge`, or None."""
    if not (user and user.is_authenticated):
        return None
    return Team.objects.filter(challenge=challenge, memberships__user=user).first()


def max_team_size(challenge) -> int | None:
    return TeamSettings.objects.filter(challenge=challenge).values_list("max_team_size", flat=True).first()


def members(team: Team) -> list:
    return [membership.user for membership in team.memberships.select_related("user")]


def _check_may_join(*, challenge: Challenge, user, field: str) -> None:
    if not challenge.is_participant(user):
        raise TeamError(
            f"Register for {challenge.title} (and be approved) before joining a team.", field=field,
            code="not_participant",
        )
    if not has_verified_email(user):
        raise TeamError(
            "Verify your email address on your profile page before joining a team.", field=field,
            code="email_unverified",
        )
    current = team_of(challenge=challenge, user=user)
    if current is not None:
        raise TeamError(
            f"You are already in team {current.name} of {challenge.title}; leave it first.", field=field,
            code="already_in_team",
        )


def _lock(challenge: Challenge, user, team: Team | None = None) -> Team | None:
    """Lock the user's registration, then the team (the order create_submission takes them in), so that a join and
    a submission of the same user, or two joins of one team, run one after the other."""
    Registration.objects.select_for_update().filter(challenge=challenge, user=user).first()
    return Team.objects.select_for_update().get(pk=team.pk) if team is not None else None


def _add_member(team: Team, user) -> None:
    try:
        with transaction.atomic():
            Membership.objects.create(team=team, user=user, challenge_id=team.challenge_id)
    except IntegrityError:  # a parallel join of another team won the race
        raise TeamError("You are already in a team of this challenge.", code="already_in_team") from None
    member_joined.send(sender=Team, team=team, user=user)


def create_team(*, challenge: Challenge, user, name: str) -> Team:
    """A new team with `user` as its leader and only member."""
    name = (name or "").strip()
    if not name:
        raise TeamError("Give the team a name.", field="name", code="required")
    if len(name) > 100:
        raise TeamError("A team name has at most 100 characters.", field="name", code="too_long")
    with transaction.atomic():
        _lock(challenge, user)
        _check_may_join(challenge=challenge, user=user, field="name")
        if Team.objects.filter(challenge=challenge, name__iexact=name).exists():
            raise TeamError(f"{challenge.title} already has a team named {name}.", field="name", code="name_taken")
        team = Team.objects.create(challenge=challenge, name=name, leader=user)
        _add_member(team, user)
    return team


def find_user(who: str):
    """The user named by a username or an email address (the email must name one account only), or TeamError."""
    who = (who or "").strip()
    if not who:
        raise TeamError("Name the user to invite (a username or an email address).", field="who", code="required")
    users = get_user_model().objects.filter(is_active=True)
    found = list(users.filter(email__iexact=who)[:2]) if "@" in who else list(users.filter(username=who)[:1])
    if len(found) != 1:
        raise TeamError(f"No account matches {who!r}.", field="who", code="unknown_user")
    return found[0]


def _check_room(team: Team, *, field: str) -> None:
    cap = max_team_size(team.challenge)
    if cap is not None and team.memberships.count() >= cap:
        raise TeamError(
            f"Team {team.name} is full: {team.challenge.title} allows at most {cap} members per team.", field=field,
            code="team_full",
        )


def invite(*, team: Team, by, who: str) -> Invitation:
    """Invite a user by username or email. Refused when they are in this or another team of the challenge, already
    invited, or the team is full."""
    invitee = find_user(who)
    challenge = team.challenge
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team.pk)
        if team.leader_id is None:
            raise TeamError("This team has no members left and takes nobody new.", code="team_closed")
        current = team_of(challenge=challenge, user=invitee)
        if current is not None and current.pk == team.pk:
            raise TeamError(f"{invitee.get_username()} is already in this team.", field="who", code="already_member")
        if current is not None:
            raise TeamError(
                f"{invitee.get_username()} is already in another team of {challenge.title}.", field="who",
                code="in_other_team",
            )
        _check_room(team, field="who")
        if Invitation.objects.filter(team=team, invitee=invitee, status=Invitation.Status.PENDING).exists():
            raise TeamError(
                f"{invitee.get_username()} already has an invitation to this team.", field="who", code="invited"
            )
        invitation = Invitation.objects.create(team=team, invitee=invitee, invited_by=by)
        invitation_sent.send(sender=Invitation, invitation=invitation)
    return invitation


def _respond(invitation: Invitation, status: str) -> None:
    invitation.status = status
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])


def _pending(invitation: Invitation) -> Invitation:
    locked = Invitation.objects.select_for_update().select_related("team__challenge").get(pk=invitation.pk)
    if locked.status != Invitation.Status.PENDING:
        raise TeamError(f"This invitation was already {locked.status}.", code="not_pending")
    return locked


def accept(*, invitation: Invitation) -> Team:
    """The invitee joins the team; their other pending invitations of the challenge are withdrawn."""
    with transaction.atomic():
        invitation = _pending(invitation)
        user, challenge = invitation.invitee, invitation.team.challenge
        team = _lock(challenge, user, invitation.team)
        assert team is not None
        if team.leader_id is None:
            raise TeamError("This team has no members left and takes nobody new.", code="team_closed")
        _check_may_join(challenge=challenge, user=user, field="__all__")
        _check_room(team, field="__all__")
        _add_member(team, user)
        _respond(invitation, Invitation.Status.ACCEPTED)
        Invitation.objects.filter(
            invitee=user, team__challenge=challenge, status=Invitation.Status.PENDING
        ).update(status=Invitation.Status.WITHDRAWN, responded_at=timezone.now())
        invitation_answered.send(sender=Invitation, invitation=invitation)
    return team


def decline(*, invitation: Invitation) -> None:
    with transaction.atomic():
        invitation = _pending(invitation)
        _respond(invitation, Invitation.Status.DECLINED)
        invitation_answered.send(sender=Invitation, invitation=invitation)


def withdraw(*, invitation: Invitation) -> None:
    with transaction.atomic():
        _respond(_pending(invitation), Invitation.Status.WITHDRAWN)


def leave(*, team: Team, user) -> None:
    """The user leaves; the leader must hand leadership on first while other members remain."""
    with transaction.atomic():
        team = _lock(team.challenge, user, team) or team
        membership = Membership.objects.filter(team=team, user=user).first()
        if membership is None:
            raise TeamError("You are not in this team.", code="not_member")
        others = team.memberships.exclude(user=user).count()
        if team.leader_id == user.pk and others:
            raise TeamError("Hand the leadership to another member before leaving.", code="leader_must_transfer")
        membership.delete()
        if not others:
            team.leader = None
            team.save(update_fields=["leader"])
            team.invitations.filter(status=Invitation.Status.PENDING).update(
                status=Invitation.Status.WITHDRAWN, responded_at=timezone.now()
            )


def transfer_leadership(*, team: Team, to: str) -> Team:
    """Make the member named `to` (a username) the leader."""
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team.pk)
        successor = team.memberships.filter(user__username=(to or "").strip()).select_related("user").first()
        if successor is None:
            raise TeamError(f"{to!r} is not a member of {team.name}.", field="to", code="not_member")
        team.leader = successor.user
        team.save(update_fields=["leader"])
    return team


def set_max_team_size(*, challenge: Challenge, size: int | None, actor) -> TeamSettings:
    """The organizers' cap on team size (None: no cap); at least 1. Recorded in the audit trail."""
    if size is not None and size < 1:
        raise TeamError("A team has at least one member: give a cap of 1 or more, or none.", field="max_team_size",
                        code="too_small")
    with transaction.atomic():
        team_settings, _ = TeamSettings.objects.select_for_update().get_or_create(challenge=challenge)
        before = team_settings.max_team_size
        team_settings.max_team_size = size
        team_settings.save(update_fields=["max_team_size"])
        if before != size:
            report_organizer_action(
                challenge=challenge, actor=actor, action="teams.cap", target=f"challenge {challenge.slug}",
                changes={"max_team_size": [before, size]},
            )
    return team_settings
