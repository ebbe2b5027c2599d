"""Signals the teams app sends to the apps above it, which it never imports (docs/architecture.md)."""

from django.dispatch import Signal

#: Sent with `invitation=` after an invitation was created (inside the inviter's transaction). The notifications app
#: tells the invitee on the site and by mail.
invitation_sent = Signal()

#: Sent with `invitation=` after the invitee accepted or declined it (inside the answering transaction; the
#: invitation's `status` says which). The notifications app tells the team's leader on the site and by mail.
invitation_answered = Signal()

#: Sent with `team=` and `user=` when a user joined a team (inside the joining transaction, with the team's row
#: locked). The submissions app moves the user's earlier submissions of the challenge to the team.
member_joined = Signal()
