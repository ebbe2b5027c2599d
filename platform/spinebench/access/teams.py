"""Teams: who sees a team and its invitations, who acts for it, and what team mates see of each other's submissions.

- A team's page (name, members, its submissions on the leaderboard) is as visible as its challenge.
- The leader invites, withdraws invitations and hands leadership on; any member may leave; only the invitee answers an
  invitation. Pending invitations are seen by the team's members, the invitee and the challenge's organizers.
- The challenge's organizers set the team-size cap.
- Team mates see each other's submissions to the team (status and scores), not their private details (comment,
  error message, logs), which stay the submitter's and the organizers'.

Objects are read through their relations only (no import of spinebench.teams): the challenges app's pages ask this
package too, and must not reach an app above them through it.
"""

from __future__ import annotations


def _signed_in(user) -> bool:
    return bool(user and user.is_authenticated)


def is_team_member(team, user) -> bool:
    return _signed_in(user) and team.memberships.filter(user=user).exists()


def can_view_team(team, user) -> bool:
    return team.challenge.is_visible_to(user)


def can_lead_team(team, user) -> bool:
    """Invite, withdraw an invitation, hand leadership on."""
    return _signed_in(user) and team.leader_id == user.pk and can_view_team(team, user)


def can_see_team_invitations(team, user) -> bool:
    return is_team_member(team, user) or team.challenge.is_organizer(user)


def can_answer_invitation(invitation, user) -> bool:
    return _signed_in(user) and invitation.invitee_id == user.pk and can_view_team(invitation.team, user)


def can_set_team_cap(challenge, user) -> bool:
    return challenge.is_organizer(user)


def is_team_mates_submission(submission, user) -> bool:
    """The submission belongs to a team the user is in."""
    return bool(submission.team_id) and _signed_in(user) and submission.team.memberships.filter(user=user).exists()
