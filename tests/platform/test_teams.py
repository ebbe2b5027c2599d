"""Teams (issue 13 item 3): creating, inviting by username or email, accepting, declining, leaving, handing
leadership on, the organizers' size cap; one team per user and challenge; the team's shared submission limit and its
one leaderboard entry; the rule for joining after submitting; the invitation notification through a real SMTP server.
API and pages alike, with bad input refused by a field-keyed message and nothing half-changed."""

from __future__ import annotations

import pytest
from django.test import Client

from spinebench.accounts.email_links import mark_verified
from spinebench.accounts.tokens import issue_token
from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.leaderboards.services import leaderboard_rows
from spinebench.notifications.kinds import Kind
from spinebench.notifications.models import Notification
from spinebench.organizers.models import AuditEvent
from spinebench.submissions.models import Submission
from spinebench.submissions.quota import submission_quota
from spinebench.submissions.services import SubmissionRefused, create_submission
from spinebench.teams import services
from spinebench.teams.models import Invitation, Membership, Team

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import csv_upload
from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory
from .smtp_server import SmtpServer, body

pytestmark = pytest.mark.django_db
NEAR = {case: (a + 1.0, b + 1.0, c + 1.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}
FAR = {case: (a + 9.0, b + 9.0, c + 9.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}


def member(challenge, username, *, verified=True):
    user = RegistrationFactory(challenge=challenge, user__username=username).user
    if verified:
        mark_verified(user=user, email=user.email)
    return user


def api(user) -> Client:
    return Client(headers={"Authorization": f"Token {issue_token(user=user, name='test').secret}"})


def submit(phase, user, angles, capture):
    with capture(execute=True):
        submission = create_submission(phase=phase, user=user, upload=csv_upload(angles))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    return submission


@pytest.fixture
def ana(phase):
    return member(phase.challenge, "ana")


@pytest.fixture
def ben(phase):
    return member(phase.challenge, "ben")


@pytest.fixture
def team(phase, ana):
    return services.create_team(challenge=phase.challenge, user=ana, name="Vertebrae United")


def test_api_create_invite_by_email_accept_and_read_the_team(phase, ana, ben):
    created = api(ana).post("/api/teams/", {"challenge": phase.challenge.slug, "name": "Lordosis Lab"})
    assert created.status_code == 201, created.json()
    team_id = created.json()["id"]
    assert created.json()["leader"] == "ana" and [m["username"] for m in created.json()["members"]] == ["ana"]

    invited = api(ana).post(f"/api/teams/{team_id}/invite/", {"who": ben.email.upper()})
    assert invited.status_code == 201 and invited.json()["invitee"] == "ben"
    assert api(ben).get("/api/team-invitations/").json()[0]["team_name"] == "Lordosis Lab"
    pending = api(ana).get(f"/api/teams/{team_id}/invitations/").json()
    assert [i["invitee"] for i in pending] == ["ben"]

    accepted = api(ben).post(f"/api/team-invitations/{invited.json()['id']}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    listed = api(ben).get(f"/api/teams/?challenge={phase.challenge.slug}&mine=1").json()
    assert [t["name"] for t in listed] == ["Lordosis Lab"]
    assert {m["username"] for m in listed[0]["members"]} == {"ana", "ben"}
    assert Client().get(f"/api/teams/{team_id}/").json()["leader"] == "ana"  # public like its challenge


def test_invite_by_username_then_decline(team, ben):
    invitation = services.invite(team=team, by=team.leader, who="ben")
    response = api(ben).post(f"/api/team-invitations/{invitation.pk}/decline/")
    assert response.status_code == 200 and response.json()["status"] == "declined"
    assert not Membership.objects.filter(user=ben).exists()
    again = api(ben).post(f"/api/team-invitations/{invitation.pk}/accept/")
    assert again.status_code == 400 and again.json()["code"] == "not_pending"


def test_bad_invitations_are_refused_by_field_and_change_nothing(phase, team, ben):
    leader = api(team.leader)
    other = services.create_team(challenge=phase.challenge, user=ben, name="Other team")
    cases = [
        ({"who": "ben"}, "in_other_team", "ben is already in another team"),
        ({"who": "ana"}, "already_member", "already in this team"),
        ({"who": "nobody-here"}, "unknown_user", "No account matches"),
        ({"who": "  "}, None, None),
    ]
    for data, code, text in cases:
        response = leader.post(f"/api/teams/{team.pk}/invite/", data)
        assert response.status_code == 400, response.json()
        if code:
            assert response.json()["code"] == code and text in response.json()["who"][0]
        else:
            assert "who" in response.json()
    assert not Invitation.objects.exists()
    assert list(other.memberships.values_list("user__username", flat=True)) == ["ben"]


def test_one_team_per_challenge_joining_two_teams_is_refused(phase, team, ben):
    carl = member(phase.challenge, "carl")
    first = services.invite(team=team, by=team.leader, who="ben")
    second_team = services.create_team(challenge=phase.challenge, user=carl, name="Second")
    second = services.invite(team=second_team, by=carl, who="ben")
    assert api(ben).post(f"/api/team-invitations/{first.pk}/accept/").status_code == 200
    second.refresh_from_db()
    assert second.status == "withdrawn"  # joining one team withdraws the others of the challenge
    refused = api(ben).post("/api/teams/", {"challenge": phase.challenge.slug, "name": "Third"})
    assert refused.status_code == 400 and refused.json()["code"] == "already_in_team"
    assert "already in team Vertebrae United" in refused.json()["name"][0]
    assert Membership.objects.filter(user=ben).count() == 1 and not Team.objects.filter(name="Third").exists()
    # a user may be in one team of each challenge
    elsewhere = PhaseFactory()
    RegistrationFactory(challenge=elsewhere.challenge, user=ben)
    assert services.create_team(challenge=elsewhere.challenge, user=ben, name="Vertebrae United").pk


def test_team_size_cap_set_by_organizers_refuses_invites_and_joins_over_it(phase, team, ben, organizer):
    carl = member(phase.challenge, "carl")
    assert api(ben).put(f"/api/team-caps/{phase.challenge.slug}/", {"max_team_size": 2},
                        content_type="application/json").status_code == 403
    bad = api(organizer).put(f"/api/team-caps/{phase.challenge.slug}/", {"max_team_size": 0},
                             content_type="application/json")
    assert bad.status_code == 400 and "max_team_size" in bad.json()
    capped = api(organizer).put(f"/api/team-caps/{phase.challenge.slug}/", {"max_team_size": 2},
                                content_type="application/json")
    assert capped.status_code == 200 and capped.json() == {"max_team_size": 2}
    assert Client().get(f"/api/team-caps/{phase.challenge.slug}/").json() == {"max_team_size": 2}
    assert AuditEvent.objects.filter(action="teams.cap").exists()

    to_ben = services.invite(team=team, by=team.leader, who="ben")
    to_carl = services.invite(team=team, by=team.leader, who="carl")  # two pending: room is checked when joining
    assert api(ben).post(f"/api/team-invitations/{to_ben.pk}/accept/").status_code == 200
    full = api(carl).post(f"/api/team-invitations/{to_carl.pk}/accept/")
    assert full.status_code == 400 and full.json()["code"] == "team_full" and "at most 2" in full.json()["__all__"][0]
    to_carl.refresh_from_db()
    assert to_carl.status == "pending" and team.memberships.count() == 2
    over = api(team.leader).post(f"/api/teams/{team.pk}/invite/", {"who": "carl"})
    assert over.status_code == 400 and over.json()["code"] == "team_full"


def test_joining_needs_a_verified_email_and_a_registration(phase, team):
    unverified = member(phase.challenge, "dora", verified=False)
    outsider = UserFactory(username="eve")
    mark_verified(user=outsider, email=outsider.email)
    for user, code in ((unverified, "email_unverified"), (outsider, "not_participant")):
        invitation = services.invite(team=team, by=team.leader, who=user.username)
        response = api(user).post(f"/api/team-invitations/{invitation.pk}/accept/")
        assert response.status_code == 400 and response.json()["code"] == code, response.json()
        invitation.refresh_from_db()
        assert invitation.status == "pending"
    assert team.memberships.count() == 1


def test_only_the_leader_invites_and_only_the_invitee_answers(phase, team, ben):
    carl = member(phase.challenge, "carl")
    invitation = services.invite(team=team, by=team.leader, who="ben")
    assert api(carl).post(f"/api/team-invitations/{invitation.pk}/accept/").status_code == 404  # not in their list
    assert api(ben).post(f"/api/team-invitations/{invitation.pk}/withdraw/").status_code == 403
    services.accept(invitation=invitation)
    assert api(ben).post(f"/api/teams/{team.pk}/invite/", {"who": "carl"}).status_code == 403
    assert api(carl).get(f"/api/teams/{team.pk}/invitations/").status_code == 403
    assert api(carl).post(f"/api/teams/{team.pk}/leave/").status_code == 403


def test_leader_hands_leadership_on_before_leaving_and_the_last_member_closes_the_team(team, ben):
    services.accept(invitation=services.invite(team=team, by=team.leader, who="ben"))
    ana = team.leader
    refused = api(ana).post(f"/api/teams/{team.pk}/leave/")
    assert refused.status_code == 400 and refused.json()["code"] == "leader_must_transfer"
    wrong = api(ana).post(f"/api/teams/{team.pk}/transfer/", {"to": "nobody"})
    assert wrong.status_code == 400 and "to" in wrong.json()
    moved = api(ana).post(f"/api/teams/{team.pk}/transfer/", {"to": "ben"})
    assert moved.status_code == 200 and moved.json()["leader"] == "ben"
    assert api(ana).post(f"/api/teams/{team.pk}/leave/").status_code == 204
    assert api(ben).post(f"/api/teams/{team.pk}/leave/").status_code == 204
    team.refresh_from_db()
    assert team.leader is None and not team.memberships.exists()
    with pytest.raises(services.TeamError, match="takes nobody new"):
        services.invite(team=team, by=ana, who="ana")


def test_a_team_is_one_leaderboard_entry_with_one_shared_limit(
    phase, team, ben, eager_tasks, django_capture_on_commit_callbacks
):
    phase.submission_limit = 2
    phase.save()
    services.accept(invitation=services.invite(team=team, by=team.leader, who="ben"))
    rival = member(phase.challenge, "rival")
    submit(phase, team.leader, FAR, django_capture_on_commit_callbacks)
    best = submit(phase, ben, NEAR, django_capture_on_commit_callbacks)
    submit(phase, rival, FAR, django_capture_on_commit_callbacks)
    rows = leaderboard_rows(phase)
    assert [(row.rank, row.participant, row.team) for row in rows] == [
        (1, "Vertebrae United", team.pk), (2, "rival", None)
    ]
    assert rows[0].submission.pk == best.pk and rows[0].values[0] == pytest.approx(smape(HIDDEN_ANGLES, NEAR))
    assert rows[0].team_url() == f"/teams/{team.pk}/"

    for user in (team.leader, ben):
        quota = submission_quota(phase=phase, user=user)
        assert (quota.used, quota.remaining) == (2, 0)
    with pytest.raises(SubmissionRefused, match="Submission limit reached: 2 of 2 submissions by your team"):
        create_submission(phase=phase, user=team.leader, upload=csv_upload(NEAR))
    assert submission_quota(phase=phase, user=rival).used == 1

    page = Client().get(phase.get_absolute_url()).content.decode()
    assert f'href="/teams/{team.pk}/"' in page
    team_page = Client().get(f"/teams/{team.pk}/").content.decode()
    assert "ana" in team_page and "ben" in team_page and "Vertebrae United" in team_page
    exported = Client().get(f"/api/phases/{phase.pk}/leaderboard/").json()["rows"]
    assert [(r["participant"], r["team"]) for r in exported] == [("Vertebrae United", team.pk), ("rival", None)]

    # Leaving: what ben made as a member stays with the team; his own quota starts empty.
    services.leave(team=team, user=ben)
    assert Submission.objects.get(pk=best.pk).team_id == team.pk
    assert submission_quota(phase=phase, user=ben).used == 0
    assert submission_quota(phase=phase, user=team.leader).used == 2


def test_joining_after_submitting_moves_the_submissions_and_the_history_keeps_the_holder(
    phase, team, ben, eager_tasks, django_capture_on_commit_callbacks
):
    phase.submission_limit = 3
    phase.save()
    solo = submit(phase, ben, NEAR, django_capture_on_commit_callbacks)
    submit(phase, team.leader, FAR, django_capture_on_commit_callbacks)
    before = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    assert [row["participant"] for row in before.rows] == ["ben", "Vertebrae United"]

    services.accept(invitation=services.invite(team=team, by=team.leader, who="ben"))
    solo.refresh_from_db()
    assert solo.team_id == team.pk
    after = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    assert after.pk != before.pk
    assert [(row["participant"], row["submission"], row["team"]) for row in after.rows] == [
        ("Vertebrae United", solo.pk, team.pk)
    ]
    before.refresh_from_db()
    assert [row["participant"] for row in before.rows] == ["ben", "Vertebrae United"]  # who held what, when
    assert submission_quota(phase=phase, user=team.leader).used == 2  # ben's earlier one counts for the team now


def test_team_pages_create_invite_accept_and_leave(phase, ana, ben):
    browser = Client()
    browser.force_login(ana)
    listing = browser.get(f"/challenges/{phase.challenge.slug}/teams/")
    assert listing.status_code == 200 and "Create a team" in listing.content.decode()
    response = browser.post(f"/challenges/{phase.challenge.slug}/teams/create/", {"name": "Page Team"})
    team = Team.objects.get(name="Page Team")
    assert response.status_code == 302 and response["Location"] == f"/teams/{team.pk}/"
    refused = browser.post(f"/teams/{team.pk}/invite/", {"who": "ghost"}, follow=True).content.decode()
    assert "No account matches" in refused
    browser.post(f"/teams/{team.pk}/invite/", {"who": "ben"})
    invitation = Invitation.objects.get(team=team)

    guest = Client()
    guest.force_login(ben)
    page = guest.get(f"/challenges/{phase.challenge.slug}/teams/").content.decode()
    assert "Your invitations" in page and "Page Team" in page
    joined = guest.post(f"/teams/invitations/{invitation.pk}/accept/", follow=True)
    assert "You joined team Page Team" in joined.content.decode()
    assert team.memberships.count() == 2
    assert guest.post(f"/teams/{team.pk}/transfer/", {"to": "ben"}).status_code == 404  # not the leader
    left = guest.post(f"/teams/{team.pk}/leave/", follow=True).content.decode()
    assert "You left team Page Team" in left and team.memberships.count() == 1


def test_hidden_challenges_teams_are_hidden(db):
    hidden = ChallengeFactory(is_public=False)
    owner = UserFactory()
    hidden.organizers.add(owner)
    mark_verified(user=owner, email=owner.email)
    team = services.create_team(challenge=hidden, user=owner, name="Secret")
    assert Client().get(f"/teams/{team.pk}/").status_code == 404
    assert api(UserFactory()).get(f"/api/teams/{team.pk}/").status_code == 404
    assert Team.objects.get(pk=team.pk).name not in api(UserFactory()).get("/api/teams/").content.decode()


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    server.start()
    server.configure(settings)
    settings.SPINEBENCH_SITE_URL = "http://testserver"
    yield server
    server.stop()


def test_invitation_notifies_on_site_and_by_mail(smtp, team, ben, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(team.leader).post(f"/api/teams/{team.pk}/invite/", {"who": "ben"})
    assert response.status_code == 201
    [note] = Notification.objects.filter(user=ben)
    assert note.kind == Kind.TEAM_INVITATION and note.link == f"/teams/{team.pk}/"
    assert note.emailed_at is not None and note.email_error == ""
    [mail] = smtp.inbox.to(ben.email)
    assert mail["Subject"] == f"SpineBench: Invitation to team Vertebrae United of {team.challenge.title}"
    text = body(mail)
    assert "ana invites you to join team Vertebrae United" in text
    assert f"/challenges/{team.challenge.slug}/teams/" in text
    assert not smtp.inbox.to(team.leader.email)


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_leader_hears_of_an_accepted_or_declined_invitation(
    smtp, team, ben, answer, eager_tasks, django_capture_on_commit_callbacks
):
    invitation = services.invite(team=team, by=team.leader, who="ben")
    with django_capture_on_commit_callbacks(execute=True):
        response = api(ben).post(f"/api/team-invitations/{invitation.pk}/{answer}/")
    assert response.status_code == 200
    past = f"{answer}ed" if answer == "accept" else "declined"
    [note] = Notification.objects.filter(user=team.leader)
    assert note.kind == Kind.TEAM_INVITATION_ANSWERED and note.link == f"/teams/{team.pk}/"
    assert note.title == f"ben {past} the invitation to team Vertebrae United"
    [mail] = smtp.inbox.to(team.leader.email)
    assert mail["Subject"] == f"SpineBench: ben {past} the invitation to team Vertebrae United"
    text = body(mail)
    assert f"ben {past} your invitation to team Vertebrae United of {team.challenge.title}" in text
    assert ("ben is now a member of team Vertebrae United" in text) == (answer == "accept")
    assert not Notification.objects.filter(user=ben, kind=Kind.TEAM_INVITATION_ANSWERED).exists()


def test_leader_who_muted_answers_gets_the_notice_on_site_only(
    smtp, team, ben, eager_tasks, django_capture_on_commit_callbacks
):
    from spinebench.notifications.services import mute

    mute(user_pk=team.leader.pk, kind=Kind.TEAM_INVITATION_ANSWERED)
    invitation = services.invite(team=team, by=team.leader, who="ben")
    with django_capture_on_commit_callbacks(execute=True):
        assert api(ben).post(f"/api/team-invitations/{invitation.pk}/accept/").status_code == 200
    assert Notification.objects.filter(user=team.leader, kind=Kind.TEAM_INVITATION_ANSWERED).count() == 1
    assert smtp.inbox.to(team.leader.email) == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_members_submitting_in_parallel_share_the_team_limit(celery_worker_process):
    """Against PostgreSQL: two members, ten uploads each at once, a team limit of 3: the team's row lock lets exactly
    three through, whoever sends them."""
    import threading
    from collections import Counter

    from django.db import connection

    from tests.conftest import wait_for

    assert connection.vendor == "postgresql"
    phase = PhaseFactory(submission_limit=3)
    ana, ben = member(phase.challenge, "ana"), member(phase.challenge, "ben")
    team = services.create_team(challenge=phase.challenge, user=ana, name="Parallel")
    services.accept(invitation=services.invite(team=team, by=ana, who="ben"))
    barrier = threading.Barrier(20)
    outcomes = []

    def attempt(user):
        try:
            barrier.wait()
            create_submission(phase=phase, user=user, upload=csv_upload(NEAR))
            outcomes.append("accepted")
        except SubmissionRefused as refusal:
            outcomes.append(refusal.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(user,)) for user in (ana, ben) * 10]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes) == {"accepted": 3, "limit": 17}, outcomes
    assert Submission.objects.filter(phase=phase, team=team).count() == 3
    wait_for(lambda: not Submission.objects.filter(phase=phase).exclude(status="succeeded").exists(), what="scoring")


def test_a_team_with_submissions_cannot_be_deleted_until_they_are_gone(
    phase, team, eager_tasks, django_capture_on_commit_callbacks
):
    from django.db.models import RestrictedError

    submit(phase, team.leader, NEAR, django_capture_on_commit_callbacks)
    with pytest.raises(RestrictedError):
        Team.objects.filter(pk=team.pk).delete()
    assert Team.objects.filter(pk=team.pk).exists()
    phase.delete()  # its submissions go with it; nothing holds the team any more
    Team.objects.filter(pk=team.pk).delete()
    assert not Team.objects.filter(pk=team.pk).exists() and not Submission.objects.exists()
