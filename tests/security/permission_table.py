"""The permission matrix as data: the fixture world, the targets that fill a URL from it, and one row per (url name,
method, target) with the expected status for every identity (tests/security/matrix.py: IDENTITIES, cells, LOGIN).

Adding a view: add its rows here (test_permission_matrix.py fails, naming the pattern and method, until you do);
add a target (and the world objects it needs) when no existing one fits. Pages are asked with the identity's
session, /api/ routes with its API token (the worker identity has only its worker token, which pages ignore)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from spinebench.accounts.email_links import mark_verified
from spinebench.accounts.models import ApiToken
from spinebench.accounts.tokens import issue_token
from spinebench.challenges.models import Announcement, Phase, Registration, RegistrationQuestion
from spinebench.evaluation.models import RescoreJob
from spinebench.submissions.models import Submission
from spinebench.submissions.services import create_submission
from spinebench.teams import services as teams
from spinebench.uploads.chunked import open_session
from tests.platform.aasce_data import HIDDEN_ANGLES, predictions_csv
from tests.platform.factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory

from .matrix import IDENTITIES, LOGIN, Row, Secret, cells

COMMENT = "matrix private note: checkpoint 7b, ask Ana about L4"
HIDDEN_PHASE_TITLE = "Sealed holdout phase qv7"
FOREIGN_CHALLENGE_TITLE = "Embargoed challenge xk3"
APPLICANT = "pending-applicant-zr5"
TOKEN_NAME = "participant laptop token mw2"
DATASET_UPLOAD_TITLE = "Unreleased holdout upload tq8"
GOOD_PREDICTIONS = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
BAD_PREDICTIONS = b"case_id,pt,mt,tl\ncase_a,not-a-number,1,1\n"
HIDDEN_NEWS = "Embargoed announcement jw4"
BLIND_PREDICTIONS = {"case_a": (33.0, 29.5, 13.25), "case_b": (16.5, 23.0, 12.0), "case_c": (25.75, 18.0, 12.5)}
#: A split phase's predictions: case_a is its public part, case_b and case_c its private part.
SPLIT_PREDICTIONS = {"case_a": (30.5, 26.25, 14.75), "case_b": (18.5, 21.0, 13.5), "case_c": (22.25, 20.75, 10.5)}


@dataclass
class World:
    users: dict[str, object] = field(default_factory=dict)  # identity -> user (None: anonymous, worker)
    tokens: dict[str, str] = field(default_factory=dict)  # identity -> API token secret
    objects: dict[str, object] = field(default_factory=dict)
    secrets: list[Secret] = field(default_factory=list)

    def __getattr__(self, name):
        try:
            return self.__dict__["objects"][name]
        except KeyError:
            raise AttributeError(name) from None


def _submit(*, phase, user, content: bytes) -> Submission:
    """Through the service, scoring at once (eager Celery, commit callbacks run inside the module's transaction)."""
    from spinebench.celery import app

    previous, app.conf.task_always_eager = app.conf.task_always_eager, True
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            upload = SimpleUploadedFile("predictions.csv", content, content_type="text/csv")
            submission = create_submission(phase=phase, user=user, upload=upload, comment=COMMENT)
    finally:
        app.conf.task_always_eager = previous
    submission.refresh_from_db()
    return submission


def build_world() -> World:
    world = World()
    users = {name: UserFactory() for name in ("outsider", "participant", "other_participant", "organizer",
                                              "other_organizer")}
    users["operator"] = UserFactory(is_staff=True, is_superuser=True)
    # The team mate: a participant in the participant's team (the participant leads it), so the world's submissions
    # are the team's. other_participant has a pending invitation to it (and no verified email address).
    users["team_mate"] = UserFactory()
    world.users = {"anonymous": None, "worker": None, **users}

    phase = PhaseFactory(show_case_results=False)  # public phase scored against hidden test labels
    challenge = phase.challenge
    challenge.organizers.add(users["organizer"])
    hidden_phase = PhaseFactory(challenge=challenge, is_public=False, title=HIDDEN_PHASE_TITLE)
    foreign = ChallengeFactory(is_public=False, title=FOREIGN_CHALLENGE_TITLE, organizers=[users["other_organizer"]])
    foreign_phase = PhaseFactory(challenge=foreign)
    for name in ("participant", "other_participant", "team_mate"):
        RegistrationFactory(challenge=challenge, user=users[name])
    for name in ("participant", "team_mate"):
        mark_verified(user=users[name], email=users[name].email)
    team = teams.create_team(challenge=challenge, user=users["participant"], name="Matrix team")
    teams.accept(invitation=teams.invite(team=team, by=users["participant"], who=users["team_mate"].username))
    invitation = teams.invite(team=team, by=users["participant"], who=users["other_participant"].username)
    pending = RegistrationFactory(
        challenge=challenge, user=UserFactory(username=APPLICANT), status=Registration.Status.PENDING
    )
    ranked = _submit(phase=phase, user=users["participant"], content=predictions_csv(GOOD_PREDICTIONS))
    assert ranked.status == "succeeded" and ranked.evaluation.rank == 1, ranked.error_message
    failed = _submit(phase=phase, user=users["participant"], content=BAD_PREDICTIONS)
    assert failed.status == "failed"
    # A blind phase of the same challenge: scored and ranked, but its score is for the organizers only.
    blind_phase = PhaseFactory(challenge=challenge, score_visibility=Phase.ScoreVisibility.BLIND)
    blind = _submit(phase=blind_phase, user=users["participant"], content=predictions_csv(BLIND_PREDICTIONS))
    assert blind.status == "succeeded" and blind.evaluation.rank == 1, blind.error_message
    blind_score = blind.evaluation.aggregates["smape"]
    # A split phase: its live leaderboard ranks case_a, its final (private) one case_b and case_c, for the
    # organizers only until they reveal it.
    split_phase = PhaseFactory(challenge=challenge, score_visibility=Phase.ScoreVisibility.SPLIT,
                               public_case_ids=["case_a"], show_case_results=True)
    split = _submit(phase=split_phase, user=users["participant"], content=predictions_csv(SPLIT_PREDICTIONS))
    assert split.status == "succeeded" and split.private_evaluation.rank == 1, split.error_message
    private_score = split.private_evaluation.aggregates["smape"]
    private_case = split.private_evaluation.metrics["case"]["case_b"]["smape"]

    from spinebench.notifications.models import Notification

    notification = Notification.objects.filter(user=users["participant"]).first() or Notification.objects.create(
        user=users["participant"], kind="submission_failed", title="matrix notification", body=COMMENT, link="/")
    from spinebench.organizers.models import BundleImport

    bundle_import = BundleImport.objects.create(uploader=users["organizer"], archive="bundles/matrix.zip", slug="mx")
    from spinebench.organizers.models import DatasetUpload

    # A dataset upload still being checked: discarding it is refused, so no row changes the world.
    dataset_upload = DatasetUpload.objects.create(
        challenge=challenge, uploader=users["organizer"], archive="datasets/matrix.zip", slug="mx-data",
        title=DATASET_UPLOAD_TITLE, original_name=DATASET_UPLOAD_TITLE, status=DatasetUpload.Status.RUNNING,
    )
    world.tokens = {name: issue_token(user=user, name="matrix").secret for name, user in users.items()}
    own = issue_token(user=users["participant"], name=TOKEN_NAME)
    world.tokens["participant"] = own.secret
    world.tokens["worker"] = issue_token(name="matrix worker", kind=ApiToken.Kind.WORKER).secret
    upload_session = open_session(owner=users["participant"], kind="algorithm_archive", size=10, sha256="ab" * 32)
    # An optional question (registering without answers still works) and announcements on both challenges: the hidden
    # challenge's news is for its organizers only.
    question = RegistrationQuestion.objects.create(challenge=challenge, label="Affiliation", required=False)
    announcement = Announcement.objects.create(challenge=challenge, title="Matrix news", body="Phase 2 opens soon.")
    hidden_news = Announcement.objects.create(challenge=foreign, title=HIDDEN_NEWS, body="Not yet public.")
    world.objects = {
        "question": question, "announcement": announcement, "hidden_news": hidden_news,
        "upload_session": upload_session,
        "challenge": challenge, "phase": phase, "hidden_phase": hidden_phase, "foreign": foreign,
        "foreign_phase": foreign_phase, "pending": pending, "ranked": ranked, "failed": failed,
        "train": phase.training_dataset, "test": phase.dataset, "participant_token": own.token,
        "notification": notification, "team": team, "invitation": invitation, "bundle_import": bundle_import,
        "dataset_upload": dataset_upload,
        # A re-score of the hidden phase that has not started: the public phase is free to be re-scored.
        "rescore_job": RescoreJob.objects.create(phase=hidden_phase, from_version=1, to_version=2),
        "blind_phase": blind_phase, "blind": blind, "split_phase": split_phase, "split": split,
    }
    organizers = frozenset({"organizer", "operator"})
    world.secrets = [
        *(Secret("hidden test ground truth", str(value)) for angles in HIDDEN_ANGLES.values() for value in angles),
        Secret("the submitter's comment", COMMENT, organizers | {"participant"}),
        Secret("a hidden phase's title", HIDDEN_PHASE_TITLE, organizers),
        Secret("a hidden challenge's title", FOREIGN_CHALLENGE_TITLE, frozenset({"other_organizer", "operator"})),
        Secret("a pending applicant's name", APPLICANT, organizers),
        Secret("a hidden challenge's announcement", HIDDEN_NEWS, frozenset({"other_organizer", "operator"})),
        Secret("the participant's token name", TOKEN_NAME, frozenset({"participant"})),
        Secret("an organizer's dataset upload", DATASET_UPLOAD_TITLE, organizers),
        # As pages write it (3 decimals) and as the API, JSON and CSV write it (all digits).
        Secret("a blind phase's score (page)", f"{blind_score:.3f}", organizers),
        Secret("a blind phase's score (data)", repr(blind_score)[:7], organizers),
        Secret("a split phase's private-part score (page)", f"{private_score:.3f}", organizers),
        Secret("a split phase's private-part score (data)", repr(private_score)[:7], organizers),
        # Per-case values of the private cases reach nobody but the organizers, not even after a reveal.
        Secret("a split phase's private case value", repr(private_case)[:7], organizers),
    ]
    assert set(world.users) == set(IDENTITIES)
    return world


def _phase_page(phase) -> dict:
    return {"challenge": phase.challenge.slug, "phase": phase.slug}


#: target name -> the URL kwargs it gives, from the world.
TARGETS = {
    "-": lambda w: {},
    "challenge": lambda w: {"slug": w.challenge.slug},
    "hidden challenge": lambda w: {"slug": w.foreign.slug},
    "challenge (baselines)": lambda w: {"challenge": w.challenge.slug},
    "hidden challenge (baselines)": lambda w: {"challenge": w.foreign.slug},
    "pending registration": lambda w: {"slug": w.challenge.slug, "pk": w.pending.pk, "decision": "approve"},
    "public phase": lambda w: _phase_page(w.phase),
    "hidden phase": lambda w: _phase_page(w.hidden_phase),
    "hidden challenge's phase": lambda w: _phase_page(w.foreign_phase),
    "public phase id": lambda w: {"pk": w.phase.pk},
    "hidden phase id": lambda w: {"pk": w.hidden_phase.pk},
    "hidden challenge's phase id": lambda w: {"pk": w.foreign_phase.pk},
    "ranked submission": lambda w: {"pk": w.ranked.pk},
    "failed submission": lambda w: {"pk": w.failed.pk},
    "ranked submission's Bland-Altman plot": lambda w: {"pk": w.ranked.pk, "kind": "bland-altman"},
    "ranked submission's case": lambda w: {"pk": w.ranked.pk, "case_id": "case_a"},
    "ranked submission's case slice": lambda w: {"pk": w.ranked.pk, "case_id": "case_a", "plane": "axial",
                                                 "index": "0"},
    "training dataset": lambda w: {"pk": w.train.pk},
    "hidden test dataset": lambda w: {"pk": w.test.pk},
    "participant's token": lambda w: {"pk": w.participant_token.pk},
    "password reset link": lambda w: {"uidb64": "MQ", "token": "set-password"},
    "forged signed link": lambda w: {"token": "forged-link-token"},
    "participant's notification": lambda w: {"pk": w.notification.pk},
    "participant's upload session": lambda w: {"pk": str(w.upload_session.pk)},
    "team": lambda w: {"pk": w.team.pk},
    "invitation (accept)": lambda w: {"pk": w.invitation.pk, "answer": "accept"},
    "invitation (withdraw)": lambda w: {"pk": w.invitation.pk, "answer": "withdraw"},
    "invitation id": lambda w: {"pk": w.invitation.pk},
    "challenge slug": lambda w: {"slug": w.challenge.slug},
    "challenge (monitor)": lambda w: {"challenge": w.challenge.slug},
    "hidden challenge (monitor)": lambda w: {"challenge": w.foreign.slug},
    "ranked submission (monitor)": lambda w: {"challenge": w.challenge.slug, "pk": w.ranked.pk},
    "failed submission (monitor)": lambda w: {"challenge": w.challenge.slug, "pk": w.failed.pk},
    "hidden phase's re-score job": lambda w: {"pk": w.rescore_job.pk},
    "blind phase": lambda w: _phase_page(w.blind_phase),
    "blind phase id": lambda w: {"pk": w.blind_phase.pk},
    "blind phase's submission": lambda w: {"pk": w.blind.pk},
    "split phase": lambda w: _phase_page(w.split_phase),
    "split phase id": lambda w: {"pk": w.split_phase.pk},
    "split phase's submission": lambda w: {"pk": w.split.pk},
    "organizer's bundle import": lambda w: {"pk": w.bundle_import.pk},
    "challenge's dataset upload": lambda w: {"pk": w.dataset_upload.pk},
    "challenge's dataset upload (console)": lambda w: {"slug": w.challenge.slug, "pk": w.dataset_upload.pk},
    "public phase (console)": lambda w: {"slug": w.challenge.slug, "pk": w.phase.pk},
    "challenge's organizer": lambda w: {"slug": w.challenge.slug, "user_pk": w.users["organizer"].pk},
    "challenge's organizer (API)": lambda w: {"slug": w.challenge.slug, "username": w.users["organizer"].username},
    "hidden phase (console)": lambda w: {"slug": w.challenge.slug, "pk": w.hidden_phase.pk},
    "question id": lambda w: {"pk": w.question.pk},
    "question (console)": lambda w: {"slug": w.challenge.slug, "pk": w.question.pk},
    "question (console move)": lambda w: {"slug": w.challenge.slug, "pk": w.question.pk, "direction": "up"},
    "announcement id": lambda w: {"pk": w.announcement.pk},
    "hidden challenge's announcement id": lambda w: {"pk": w.hidden_news.pk},
    "announcement (console)": lambda w: {"slug": w.challenge.slug, "pk": w.announcement.pk},
    "public phase (console move)": lambda w: {"slug": w.challenge.slug, "pk": w.phase.pk, "direction": "down"},
    "ranked submission (worker)": lambda w: {"submission_pk": w.ranked.pk},
    "ranked submission's job (worker)": lambda w: {"submission_pk": w.ranked.pk, "job_pk": 1},
    "forged signed file": lambda w: {"signed": "forged"},
}


def _predictions():
    return {"file": SimpleUploadedFile("p.csv", predictions_csv(GOOD_PREDICTIONS), content_type="text/csv"),
            "comment": "matrix upload"}


ORGANIZERS_ONLY = {"organizer": 200, "operator": 200}  # over a default of 404
PAGE_LOGIN = {"anonymous": LOGIN, "worker": LOGIN}  # @login_required pages: the worker token is no session
API_REFUSED = {"anonymous": 401, "worker": 403}  # no credentials; worker token on a non-worker endpoint
PARTICIPANTS = ("participant", "other_participant", "team_mate", "organizer", "operator")


def _get_and_post(name: str, target: str, expect: dict, **kwargs) -> list[Row]:
    """A function view that answers POST as it answers GET (a read-only page: nothing to change)."""
    return [Row(name, method, target, expect, **kwargs) for method in ("GET", "POST")]


def _post_only(name: str, target: str, expect: dict, **kwargs) -> list[Row]:
    """A @login_required @require_POST view: GET is 405 once signed in."""
    return [Row(name, "POST", target, expect, **kwargs), Row(name, "GET", target, cells(405, **PAGE_LOGIN))]


def _rescore_public_phase() -> dict:
    """The world's public phase (the hidden phase's sibling), named in a request body."""
    phases = Phase.objects.get(title=HIDDEN_PHASE_TITLE).challenge.phases
    return {"phase": phases.get(is_public=True, score_visibility=Phase.ScoreVisibility.PUBLIC).pk,
            "note": "matrix re-score"}


def _hide_reason() -> dict:
    return {"reason": "matrix: predictions copied from another team"}


def _participants(status, default, **overrides) -> dict:
    return cells(default, **{name: status for name in PARTICIPANTS}, **overrides)


ROWS: list[Row] = [
    # Challenges and registration (pages).
    *_get_and_post("challenges:list", "-", cells(200)),
    *_get_and_post("challenges:home", "-", cells(200)),
    *_get_and_post("challenges:detail", "challenge", cells(200)),
    *_get_and_post("challenges:detail", "hidden challenge", cells(404, other_organizer=200, operator=200)),
    # Registration: the form (the world's challenge asks one optional question) for whoever has not registered yet;
    # the registered are sent back to the challenge. An empty POST registers (the question is optional).
    Row("challenges:register", "GET", "challenge",
        cells(200, participant=302, other_participant=302, team_mate=302, **PAGE_LOGIN)),
    Row("challenges:register", "POST", "challenge", cells(302, **PAGE_LOGIN)),
    Row("challenges:register", "GET", "hidden challenge", cells(404, other_organizer=200, operator=200, **PAGE_LOGIN)),
    Row("challenges:register", "POST", "hidden challenge",
        cells(404, other_organizer=302, operator=302, **PAGE_LOGIN)),
    # Announcements: for whoever sees the challenge.
    *_get_and_post("challenges:announcements", "challenge", cells(200)),
    *_get_and_post("challenges:announcements", "hidden challenge", cells(404, other_organizer=200, operator=200)),
    *_post_only("challenges:registration-decide", "pending registration",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    # Phase pages and exports.
    *_get_and_post("leaderboards:phase", "public phase", cells(200)),
    *_get_and_post("leaderboards:phase", "hidden phase", cells(404, **ORGANIZERS_ONLY)),
    *_get_and_post("leaderboards:phase", "hidden challenge's phase", cells(404, other_organizer=200, operator=200)),
    *_get_and_post("leaderboards:inputs", "public phase", _participants(200, 404, **PAGE_LOGIN)),
    *_get_and_post("leaderboards:inputs", "hidden phase", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    # AASCE scores have no ROC curve: the overlay does not exist for anyone.
    *_get_and_post("leaderboards:roc", "public phase", cells(404)),
    *_get_and_post("leaderboards:export-csv", "public phase", cells(200)),
    *_get_and_post("leaderboards:export-csv", "hidden phase", cells(404, **ORGANIZERS_ONLY)),
    *_get_and_post("leaderboards:export-json", "public phase", cells(200)),
    *_get_and_post("leaderboards:export-json", "hidden phase", cells(404, **ORGANIZERS_ONLY)),
    # Submissions (pages).
    *_get_and_post("submissions:detail", "ranked submission", cells(200)),
    # A team mate sees the team's submissions (not their comment, error or logs: the submitter's private details).
    *_get_and_post("submissions:detail", "failed submission",
                   cells(404, participant=200, team_mate=200, **ORGANIZERS_ONLY)),
    # Bland-Altman points read against one's own predictions give every hidden label: organizers only.
    *_get_and_post("submissions:plot", "ranked submission's Bland-Altman plot", cells(404, **ORGANIZERS_ONLY)),
    # The method card: its submitter and their team mates edit it (an empty POST clears it: back to the submission);
    # organizers may hide a submission, not speak for it.
    Row("submissions:method-card", "GET", "ranked submission",
        cells(404, participant=200, team_mate=200, **PAGE_LOGIN)),
    Row("submissions:method-card", "POST", "ranked submission",
        cells(404, participant=302, team_mate=302, **PAGE_LOGIN)),
    Row("submissions:method-card", "GET", "failed submission",
        cells(404, participant=200, team_mate=200, **PAGE_LOGIN)),
    *_post_only("submissions:cancel", "ranked submission",
                cells(404, participant=302, organizer=302, operator=302, **PAGE_LOGIN)),
    Row("submissions:create", "GET", "public phase", cells(200, **PAGE_LOGIN)),
    Row("submissions:create", "GET", "hidden phase", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    # Accepted: a redirect to the new submission; refused (not registered): the form again, with the reason.
    Row("submissions:create", "POST", "public phase", _participants(302, 200, **PAGE_LOGIN), data=_predictions),
    # Without ?fragment=runs the baselines URL leads to the challenge's baselines tab.
    *_get_and_post("submissions:baselines", "challenge (baselines)", cells(302)),
    *_get_and_post("submissions:baselines", "hidden challenge (baselines)",
                   cells(404, other_organizer=302, operator=302)),
    # Case viewers draw the labels, so on a hidden-label phase only its organizers may open them (the figures'
    # rule; tests/platform/test_case_viewer.py shows organizers the drawing there). This world's test set holds
    # angles alone, without landmarks: there is nothing to draw, so the viewer does not exist for anyone.
    *_get_and_post("submissions:case", "ranked submission's case", cells(404)),
    *_get_and_post("submissions:case-image", "ranked submission's case", cells(404)),
    *_get_and_post("submissions:case-slice", "ranked submission's case slice", cells(404)),
    *_get_and_post("datasets:download", "training dataset", _participants(200, 404, **PAGE_LOGIN)),
    *_get_and_post("datasets:download", "hidden test dataset", cells(404, **PAGE_LOGIN)),
    *_get_and_post("algorithms:howto", "-", cells(200)),
    *_get_and_post("algorithms:submission", "ranked submission", cells(404, participant=200, **ORGANIZERS_ONLY)),
    # Accounts (pages): forms answer an empty POST with the form and its errors.
    *_get_and_post("signup", "-", cells(200)),
    *_get_and_post("login", "-", cells(200)),
    # Django's form views answer PUT as POST (with no form data: the form and its errors).
    Row("login", "PUT", "-", cells(200)),
    Row("password_change", "PUT", "-", cells(200, **PAGE_LOGIN)),
    Row("password_reset", "PUT", "-", cells(200)),
    Row("password_reset_confirm", "PUT", "password reset link", cells(200)),
    Row("logout", "POST", "-", cells(302)),
    Row("password_change", "GET", "-", cells(200, **PAGE_LOGIN)),
    Row("password_change", "POST", "-", cells(200, **PAGE_LOGIN)),
    Row("password_change_done", "GET", "-", cells(200, **PAGE_LOGIN)),
    Row("password_reset", "GET", "-", cells(200)),
    Row("password_reset", "POST", "-", cells(200)),
    Row("password_reset_done", "GET", "-", cells(200)),
    Row("password_reset_confirm", "GET", "password reset link", cells(200)),
    Row("password_reset_confirm", "POST", "password reset link", cells(200)),
    Row("password_reset_complete", "GET", "-", cells(200)),
    # The admin's entrance (the rest of the admin is Django's own staff-only site; see matrix._excluded). A signed-in
    # operator is sent on to the index.
    Row("admin:login", "GET", "-", cells(200, operator=302)),
    Row("admin:login", "POST", "-", cells(200)),
    # Accounts: email links (a forged or stale link gets the friendly link-problem page), profile, token page.
    *_get_and_post("verify-email", "forged signed link", cells(400)),
    *_get_and_post("confirm-email-change", "forged signed link", cells(400)),
    # A new verification link is asked for with a POST (its button): signed in, back to the profile; else log in.
    Row("resend-verification", "POST", "-", cells(302, **PAGE_LOGIN)),
    Row("resend-verification", "GET", "-", cells(405)),
    *_get_and_post("profile", "-", cells(200, **PAGE_LOGIN)),
    *_get_and_post("tokens", "-", cells(200, **PAGE_LOGIN)),
    *_post_only("token-revoke", "participant's token", cells(404, participant=302, **PAGE_LOGIN)),
    # Notifications (pages): one's own only.
    *_get_and_post("notifications:list", "-", cells(200, **PAGE_LOGIN)),
    *_post_only("notifications:mark-read", "-", cells(302, **PAGE_LOGIN)),
    *_get_and_post("notifications:preferences", "-", cells(200, **PAGE_LOGIN)),
    *_get_and_post("notifications:unsubscribe", "forged signed link", cells(400)),
    # The worker-token API: worker tokens only (a participant's token never gets a job, a signed URL or a file). The
    # world's submissions are CSV ones, which no container worker runs (404); a heartbeat without a hostname is 400;
    # a forged signed URL is refused (403).
    Row("worker-heartbeat", "POST", "-", cells(403, anonymous=401, worker=400)),
    Row("worker-recover", "POST", "-", cells(403, anonymous=401, worker=200)),
    *[Row(name, "POST", "ranked submission (worker)", cells(403, anonymous=401, worker=404))
      for name in ("worker-claim", "worker-lease", "worker-finish", "worker-fail", "worker-engine-fault",
                   "worker-no-engine", "worker-evaluation-claim", "worker-evaluation-result")],
    *[Row(name, "POST", "ranked submission's job (worker)", cells(403, anonymous=401, worker=404))
      for name in ("worker-job-start", "worker-job-report")],
    Row("worker-file", "GET", "forged signed file", cells(403, anonymous=401, worker=403)),
    # API: notifications, one's own only.
    Row("notification-list", "GET", "-", cells(200, **API_REFUSED)),
    Row("notification-detail", "GET", "participant's notification", cells(404, participant=200, **API_REFUSED)),
    Row("notification-read", "POST", "participant's notification", cells(404, participant=200, **API_REFUSED)),
    Row("notification-read-all", "POST", "-", cells(200, **API_REFUSED)),
    # API: tokens. The token exchange has no authentication at all (a worker token there is just a header).
    Row("api-token", "POST", "-", cells(400), why="no username/password: a validation error for everyone"),
    Row("api-token-item-list", "GET", "-", cells(200, **API_REFUSED)),
    Row("api-token-item-detail", "GET", "participant's token", cells(404, participant=200, **API_REFUSED)),
    Row("api-token-item-detail", "DELETE", "participant's token", cells(404, participant=204, **API_REFUSED)),
    # API: challenges and phases.
    Row("api-root", "GET", "-", cells(200, worker=403)),
    Row("schema", "GET", "-", cells(200, worker=403)),
    Row("api-docs", "GET", "-", cells(200, worker=403)),
    Row("challenge-list", "GET", "-", cells(200, worker=403)),
    Row("challenge-detail", "GET", "challenge", cells(200, worker=403)),
    Row("challenge-detail", "GET", "hidden challenge", cells(404, other_organizer=200, operator=200, worker=403)),
    Row("challenge-register", "POST", "challenge", cells(201, **API_REFUSED)),
    Row("challenge-register", "POST", "hidden challenge", cells(404, other_organizer=201, operator=201, **API_REFUSED)),
    Row("challenge-announcements", "GET", "challenge", cells(200, worker=403)),
    Row("challenge-announcements", "GET", "hidden challenge",
        cells(404, other_organizer=200, operator=200, worker=403)),
    Row("phase-list", "GET", "-", cells(200, worker=403)),
    Row("phase-detail", "GET", "public phase id", cells(200, worker=403)),
    Row("phase-detail", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, worker=403)),
    Row("phase-detail", "GET", "hidden challenge's phase id",
        cells(404, other_organizer=200, operator=200, worker=403)),
    Row("phase-quota", "GET", "public phase id", cells(200, **API_REFUSED)),
    Row("phase-quota", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("phase-leaderboard", "GET", "public phase id", cells(200, worker=403)),
    Row("phase-leaderboard", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, worker=403)),
    Row("phase-inputs", "GET", "public phase id", _participants(200, 403, **API_REFUSED)),
    Row("phase-inputs", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("phase-submissions", "POST", "public phase id", _participants(201, 403, **API_REFUSED), data=_predictions),
    Row("phase-submissions", "POST", "hidden phase id", cells(404, organizer=201, operator=201, **API_REFUSED),
        data=_predictions),
    # API: submissions and datasets. The list is the caller's own submissions (anonymous: an empty list).
    Row("submission-list", "GET", "-", cells(200, worker=403)),
    Row("submission-detail", "GET", "ranked submission", cells(200, worker=403)),
    Row("submission-detail", "GET", "failed submission",
        cells(404, participant=200, team_mate=200, **ORGANIZERS_ONLY, worker=403)),
    # PATCH edits the method card (an empty body changes nothing): the submitter and team mates; others who may see
    # the submission are refused (403), the rest get 404.
    Row("submission-detail", "PATCH", "ranked submission", cells(403, participant=200, team_mate=200, **API_REFUSED)),
    Row("submission-detail", "PATCH", "failed submission",
        cells(404, participant=200, team_mate=200, organizer=403, operator=403, **API_REFUSED)),
    Row("dataset-download", "GET", "training dataset", _participants(200, 403, **API_REFUSED)),
    Row("dataset-download", "GET", "hidden test dataset", cells(404, **API_REFUSED)),
    # Method cards and the `chosen` selection (issue #13): one's own picks only; the world's phase ranks the best
    # submission, so a choice there is a 400 saying there is nothing to choose (an empty API body: a 400 too).
    Row("submissions:choose", "GET", "public phase", cells(200, **PAGE_LOGIN)),
    Row("submissions:choose", "GET", "hidden phase", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    Row("submissions:choose", "POST", "public phase", cells(400, **PAGE_LOGIN)),
    Row("submissions:choose", "POST", "hidden phase", cells(404, organizer=400, operator=400, **PAGE_LOGIN)),
    Row("phase-chosen", "GET", "public phase id", cells(200, **API_REFUSED)),
    Row("phase-chosen", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("phase-chosen", "POST", "public phase id", cells(400, **API_REFUSED)),
    Row("phase-chosen", "POST", "hidden phase id", cells(404, organizer=400, operator=400, **API_REFUSED)),
    # Leaderboard history: as visible as the leaderboard.
    *_get_and_post("leaderboards:history", "public phase", cells(200)),
    *_get_and_post("leaderboards:history", "hidden phase", cells(404, **ORGANIZERS_ONLY)),
    Row("phase-history", "GET", "public phase id", cells(200, worker=403)),
    Row("phase-history", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, worker=403)),
    # Compare: per-case values on a hidden-label phase are for its organizers only (the figures' rule). Without
    # `with` the page is its empty form and the API a 400 naming the field.
    *_get_and_post("submissions:compare", "ranked submission", cells(404, **ORGANIZERS_ONLY)),
    Row("submission-compare", "GET", "ranked submission", cells(404, organizer=400, operator=400, worker=403)),
    # API: chunked upload sessions, their owner only (an operator too gets 404). An empty create is a validation
    # error; the owner's empty PUT names the missing offset (400) and an early finalise the missing bytes (409).
    Row("upload-session-list", "POST", "-", cells(400, **API_REFUSED)),
    Row("upload-session-detail", "GET", "participant's upload session", cells(404, participant=200, **API_REFUSED)),
    Row("upload-session-detail", "PUT", "participant's upload session", cells(404, participant=400, **API_REFUSED)),
    Row("upload-session-detail", "DELETE", "participant's upload session",
        cells(404, participant=204, **API_REFUSED)),
    Row("upload-session-finalise", "POST", "participant's upload session",
        cells(404, participant=409, **API_REFUSED)),
    # Teams (pages): the participant leads "Matrix team", the team mate is in it, other_participant is invited (an
    # unverified address: accepting is refused with a message). Actions redirect back with what happened or why.
    *_get_and_post("teams:list", "challenge", cells(200)),
    *_get_and_post("teams:list", "hidden challenge", cells(404, other_organizer=200, operator=200)),
    *_post_only("teams:create", "challenge", cells(302, **PAGE_LOGIN)),
    *_post_only("teams:create", "hidden challenge", cells(404, other_organizer=302, operator=302, **PAGE_LOGIN)),
    *_post_only("teams:cap", "challenge", cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    *_get_and_post("teams:detail", "team", cells(200)),
    *_post_only("teams:invite", "team", cells(404, participant=302, **PAGE_LOGIN)),
    *_post_only("teams:transfer", "team", cells(404, participant=302, **PAGE_LOGIN)),
    *_post_only("teams:leave", "team", cells(404, participant=302, team_mate=302, **PAGE_LOGIN)),
    *_post_only("teams:invitation-answer", "invitation (accept)", cells(404, other_participant=302, **PAGE_LOGIN)),
    *_post_only("teams:invitation-answer", "invitation (withdraw)", cells(404, participant=302, **PAGE_LOGIN)),
    # API: teams. Without data a create, invite or transfer is a 400 naming the field; the leader may not leave while
    # the team mate remains (400), the team mate may (204).
    Row("team-list", "GET", "-", cells(200, worker=403)),
    Row("team-list", "POST", "-", cells(400, **API_REFUSED)),
    Row("team-detail", "GET", "team", cells(200, worker=403)),
    Row("team-invite", "POST", "team", cells(403, participant=400, **API_REFUSED)),
    Row("team-transfer", "POST", "team", cells(403, participant=400, **API_REFUSED)),
    Row("team-leave", "POST", "team", cells(403, participant=400, team_mate=204, **API_REFUSED)),
    Row("team-invitations", "GET", "team",
        cells(403, participant=200, team_mate=200, organizer=200, operator=200, **API_REFUSED)),
    Row("team-invitation-list", "GET", "-", cells(200, **API_REFUSED)),
    Row("team-invitation-detail", "GET", "invitation id",
        cells(404, participant=200, other_participant=200, **API_REFUSED)),
    Row("team-invitation-accept", "POST", "invitation id",
        cells(404, participant=403, other_participant=400, **API_REFUSED)),
    Row("team-invitation-decline", "POST", "invitation id",
        cells(404, participant=403, other_participant=200, **API_REFUSED)),
    Row("team-invitation-withdraw", "POST", "invitation id",
        cells(404, participant=200, other_participant=403, **API_REFUSED)),
    Row("team-cap-detail", "GET", "challenge slug", cells(200, worker=403)),
    Row("team-cap-detail", "PUT", "challenge slug", cells(403, organizer=400, operator=400, **API_REFUSED)),
    # The dashboard: one's own challenges and submissions only (page and API).
    *_get_and_post("dashboard:home", "-", cells(200, **PAGE_LOGIN)),
    Row("my-submission-list", "GET", "-", cells(200, **API_REFUSED)),
    # The one cancel endpoint: the submitter and the organizers pass the access policy, and learn that a finished
    # submission cannot be cancelled (409); others who may see the submission are refused (403), the rest get 404.
    Row("submission-cancel", "POST", "ranked submission",
        cells(403, participant=409, organizer=409, operator=409, **API_REFUSED)),
    Row("submission-cancel", "POST", "failed submission",
        cells(404, participant=409, team_mate=403, organizer=409, operator=409, **API_REFUSED)),
    # Organizers' scoring control (pages): the submission monitor, its actions, re-scoring a phase.
    *_get_and_post("organizer_evaluation:monitor", "challenge (monitor)", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_get_and_post("organizer_evaluation:monitor", "hidden challenge (monitor)",
                   cells(404, other_organizer=200, operator=200, **PAGE_LOGIN)),
    *_get_and_post("organizer_evaluation:submission", "ranked submission (monitor)",
                   cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_get_and_post("organizer_evaluation:submission", "failed submission (monitor)",
                   cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_post_only("organizer_evaluation:hide", "ranked submission (monitor)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN), data=_hide_reason),
    *_post_only("organizer_evaluation:restore", "ranked submission (monitor)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    *_post_only("organizer_evaluation:rerun", "ranked submission (monitor)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    Row("organizer_evaluation:rescore", "GET", "public phase", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    Row("organizer_evaluation:rescore", "POST", "public phase",
        cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    # Its re-score job is still pending: the form comes back with the reason.
    *_get_and_post("organizer_evaluation:rescore", "hidden phase", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    Row("organizer_evaluation:rescore", "GET", "hidden challenge's phase",
        cells(404, other_organizer=200, operator=200, **PAGE_LOGIN)),
    Row("organizer_evaluation:rescore", "POST", "hidden challenge's phase",
        cells(404, other_organizer=302, operator=302, **PAGE_LOGIN)),
    *_get_and_post("organizer_evaluation:rescore-progress", "hidden phase's re-score job",
                   cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    # API: re-score jobs (one's own challenges' only; another phase id is "does not exist", 400 on `phase`).
    Row("rescore-job-list", "GET", "-", cells(200, **API_REFUSED)),
    Row("rescore-job-list", "POST", "-", cells(400, organizer=201, operator=201, **API_REFUSED),
        data=_rescore_public_phase),
    Row("rescore-job-detail", "GET", "hidden phase's re-score job", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    # API: the submission monitor. The list needs ?challenge=<slug> (tests/platform/test_monitor.py asks with it).
    Row("monitored-submission-list", "GET", "-", cells(400, **API_REFUSED)),
    Row("monitored-submission-detail", "GET", "ranked submission", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("monitored-submission-detail", "GET", "failed submission", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("monitored-submission-hide", "POST", "ranked submission", cells(404, **ORGANIZERS_ONLY, **API_REFUSED),
        data=_hide_reason),
    Row("monitored-submission-restore", "POST", "ranked submission", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("monitored-submission-rerun", "POST", "ranked submission",
        cells(404, organizer=201, operator=201, **API_REFUSED)),
    # Blind leaderboards: the page exists for everyone (it says the phase is blind), scores only for organizers.
    *_get_and_post("leaderboards:phase", "blind phase", cells(200)),
    *_get_and_post("leaderboards:export-csv", "blind phase", cells(404, **ORGANIZERS_ONLY)),
    *_get_and_post("leaderboards:export-json", "blind phase", cells(404, **ORGANIZERS_ONLY)),
    Row("phase-leaderboard", "GET", "blind phase id", cells(403, **ORGANIZERS_ONLY)),
    # ... and so is its history (page and API), until the reveal.
    *_get_and_post("leaderboards:history", "blind phase", cells(404, **ORGANIZERS_ONLY)),
    Row("phase-history", "GET", "blind phase id", cells(403, **ORGANIZERS_ONLY, worker=403)),
    # (the submitter's team mate sees the team's submission too: its status, no score until the reveal)
    *_get_and_post("submissions:detail", "blind phase's submission",
                   cells(404, participant=200, team_mate=200, **ORGANIZERS_ONLY)),
    Row("submission-detail", "GET", "blind phase's submission",
        cells(404, participant=200, team_mate=200, **ORGANIZERS_ONLY, worker=403)),
    # Split phases: the live leaderboard (the public part) is everyone's; the final one (?part=final, the private
    # part) the organizers' until the reveal, in pages, exports and the API.
    *_get_and_post("leaderboards:phase", "split phase", cells(200)),
    *_get_and_post("leaderboards:export-json", "split phase", cells(200)),
    *_get_and_post("leaderboards:history", "split phase", cells(200)),
    *_get_and_post("leaderboards:phase", "split phase", cells(404, **ORGANIZERS_ONLY), query="?part=final"),
    *_get_and_post("leaderboards:export-csv", "split phase", cells(404, **ORGANIZERS_ONLY), query="?part=final"),
    *_get_and_post("leaderboards:export-json", "split phase", cells(404, **ORGANIZERS_ONLY), query="?part=final"),
    *_get_and_post("leaderboards:history", "split phase", cells(404, **ORGANIZERS_ONLY), query="?part=final"),
    Row("phase-leaderboard", "GET", "split phase id", cells(200, worker=403)),
    Row("phase-leaderboard", "GET", "split phase id", cells(403, **ORGANIZERS_ONLY), query="?part=final"),
    Row("phase-history", "GET", "split phase id", cells(403, **ORGANIZERS_ONLY, worker=403), query="?part=final"),
    Row("phase-detail", "GET", "split phase id", cells(200, worker=403)),
    # (its submission pages show the public part's scores and per-case values, never the private part's)
    *_get_and_post("submissions:detail", "split phase's submission", cells(200)),
    Row("submission-detail", "GET", "split phase's submission", cells(200, worker=403)),
    Row("phase-reveal", "POST", "split phase id", cells(404, organizer=200, operator=200, **API_REFUSED)),
    # Revealing: a public phase has nothing to reveal (the page says so; the API answers 409).
    *_post_only("organizer_evaluation:reveal", "public phase", cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    *_post_only("organizer_evaluation:reveal", "blind phase", cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    Row("phase-reveal", "POST", "public phase id", cells(404, organizer=409, operator=409, **API_REFUSED)),
    Row("phase-reveal", "POST", "blind phase id", cells(404, organizer=200, operator=200, **API_REFUSED)),
    # A phase's evaluation (metric declaration, evaluation images): its challenge's organizers only; the POSTs carry
    # no data, so an organizer gets the form's (page) or the serializer's (API) refusal and nothing changes.
    *_get_and_post("evaluation_images:page", "public phase", cells(404, organizer=200, operator=200, **PAGE_LOGIN)),
    *_get_and_post("evaluation_images:page", "hidden challenge's phase",
                   cells(404, other_organizer=200, operator=200, **PAGE_LOGIN)),
    *_post_only("evaluation_images:declare", "public phase", cells(404, organizer=400, operator=400, **PAGE_LOGIN)),
    *_post_only("evaluation_images:upload", "public phase", cells(404, organizer=400, operator=400, **PAGE_LOGIN)),
    *_post_only("evaluation_images:upload", "hidden challenge's phase",
                cells(404, other_organizer=400, operator=400, **PAGE_LOGIN)),
    Row("phase-metric-declaration", "GET", "public phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("phase-metric-declaration", "GET", "hidden challenge's phase id",
        cells(404, other_organizer=200, operator=200, **API_REFUSED)),
    Row("phase-metric-declaration", "PUT", "public phase id",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("phase-evaluation-images", "GET", "public phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("phase-evaluation-images", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("phase-evaluation-images", "POST", "public phase id",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
    # Terms: the world's challenges have none (tests/platform/test_challenge_terms.py has the versions and gates).
    *_get_and_post("challenges:terms", "challenge", cells(404)),
    *_get_and_post("challenges:terms", "hidden challenge", cells(404)),
    Row("challenge-terms", "GET", "challenge", cells(404, worker=403)),
    Row("challenge-accept-terms", "POST", "challenge", cells(404, **API_REFUSED)),
    *_get_and_post("organizers:terms", "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    Row("organizer-challenge-terms", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-terms", "POST", "challenge", cells(404, organizer=400, operator=400, **API_REFUSED)),
    # A challenge's logo: the world's challenges have none (tests/platform/test_organizer_console.py serves one).
    *_get_and_post("challenges:logo", "challenge", cells(404)),
    *_get_and_post("challenges:logo", "hidden challenge", cells(404)),
    # Organizers' console (pages): any signed-in user may create a challenge (an empty POST: the empty form again);
    # a challenge's console is for its organizers and site operators, 404 for everyone else.
    *_get_and_post("organizers:index", "-", cells(200, **PAGE_LOGIN)),
    *_get_and_post("organizers:preview", "-", cells(200, **PAGE_LOGIN)),
    *_get_and_post("organizers:create", "-", cells(200, **PAGE_LOGIN)),
    *_get_and_post("organizers:overview", "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_get_and_post("organizers:overview", "hidden challenge",
                   cells(404, other_organizer=200, operator=200, **PAGE_LOGIN)),
    *_get_and_post("organizers:phases", "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_get_and_post("organizers:audit", "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_get_and_post("organizers:registrations-csv", "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_get_and_post("organizers:audit", "hidden challenge",
                   cells(404, other_organizer=200, operator=200, **PAGE_LOGIN)),
    *[row for name in ("organizers:challenge", "organizers:organizers", "organizers:phase-create",
                       "organizers:registrations")
      for row in _get_and_post(name, "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN))],
    *_get_and_post("organizers:phase-edit", "hidden phase (console)", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_post_only("organizers:phase-move", "public phase (console move)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    # Removing the only organizer is refused (a message, back to the list); the others never reach the challenge.
    *_post_only("organizers:organizer-remove", "challenge's organizer",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    # API: the organizers' console. An empty body is a validation error (400) for whoever may act.
    Row("organizer-challenge-list", "GET", "-", cells(200, **API_REFUSED)),
    Row("organizer-challenge-list", "POST", "-", cells(400, **API_REFUSED)),
    Row("organizer-challenge-detail", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-detail", "GET", "hidden challenge",
        cells(404, other_organizer=200, operator=200, **API_REFUSED)),
    Row("organizer-challenge-detail", "PATCH", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-add-organizer", "POST", "challenge",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-challenge-remove-organizer", "POST", "challenge's organizer (API)",
        cells(404, organizer=400, operator=400, **API_REFUSED), why="the last organizer stays"),
    Row("organizer-challenge-phases", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-phases", "POST", "challenge", cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-challenge-registrations", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-decide-registrations", "POST", "challenge",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-challenge-audit", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-export-registrations", "GET", "challenge",
        cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-phase-detail", "GET", "hidden phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-phase-detail", "GET", "hidden challenge's phase id",
        cells(404, other_organizer=200, operator=200, **API_REFUSED)),
    Row("organizer-phase-detail", "PATCH", "public phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-phase-move", "POST", "public phase id", cells(404, organizer=400, operator=400, **API_REFUSED)),
    # Registration questions and announcements (console pages): the challenge's organizers only. An empty POST is an
    # unbound form (the page again); removing the question archives or deletes it, moving the first one up does nothing.
    *[row for name in ("organizers:questions", "organizers:announcements")
      for row in _get_and_post(name, "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN))],
    *_get_and_post("organizers:questions", "hidden challenge", cells(404, other_organizer=200, operator=200,
                                                                     **PAGE_LOGIN)),
    *_get_and_post("organizers:question-edit", "question (console)", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_post_only("organizers:question-remove", "question (console)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    *_post_only("organizers:question-move", "question (console move)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    *_get_and_post("organizers:announcement-edit", "announcement (console)",
                   cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_post_only("organizers:announcement-delete", "announcement (console)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    # API: the same. An empty POST is a 400 naming the missing fields; an empty PATCH changes nothing (200).
    Row("organizer-challenge-questions", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-questions", "POST", "challenge", cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-challenge-announcements", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-challenge-announcements", "GET", "hidden challenge",
        cells(404, other_organizer=200, operator=200, **API_REFUSED)),
    Row("organizer-challenge-announcements", "POST", "challenge",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-question-detail", "GET", "question id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-question-detail", "PATCH", "question id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-question-detail", "DELETE", "question id", cells(404, organizer=204, operator=204, **API_REFUSED)),
    Row("organizer-question-move", "POST", "question id", cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-announcement-detail", "GET", "announcement id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-announcement-detail", "GET", "hidden challenge's announcement id",
        cells(404, other_organizer=200, operator=200, **API_REFUSED)),
    Row("organizer-announcement-detail", "PATCH", "announcement id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-announcement-detail", "DELETE", "announcement id",
        cells(404, organizer=204, operator=204, **API_REFUSED)),
    # Bundle upload: any signed-in user (an empty upload is a field error); the job is its uploader's.
    *_get_and_post("organizers:import", "-", cells(200, **PAGE_LOGIN)),
    *_get_and_post("organizers:import-status", "organizer's bundle import",
                   cells(404, organizer=200, operator=200, **PAGE_LOGIN)),
    Row("challenge-import", "POST", "-", cells(400, **API_REFUSED)),
    Row("organizer-import-detail", "GET", "organizer's bundle import",
        cells(404, organizer=200, operator=200, **API_REFUSED)),
    # Datasets from the site: the challenge's organizers only. Empty POSTs are form or serializer refusals (400); the
    # world's upload is still being checked, so discarding it is refused (a message, back to the list; 400 in the
    # API); a phase form that names no field changes nothing (302).
    Row("organizers:datasets", "GET", "challenge", cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    Row("organizers:datasets", "POST", "challenge", cells(404, organizer=400, operator=400, **PAGE_LOGIN)),
    Row("organizers:datasets", "GET", "hidden challenge", cells(404, other_organizer=200, operator=200, **PAGE_LOGIN)),
    *_get_and_post("organizers:dataset-upload", "challenge's dataset upload (console)",
                   cells(404, **ORGANIZERS_ONLY, **PAGE_LOGIN)),
    *_post_only("organizers:dataset-attach", "challenge's dataset upload (console)",
                cells(404, organizer=400, operator=400, **PAGE_LOGIN)),
    *_post_only("organizers:dataset-discard", "challenge's dataset upload (console)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    *_post_only("organizers:phase-datasets", "public phase (console)",
                cells(404, organizer=302, operator=302, **PAGE_LOGIN)),
    Row("organizer-dataset-upload-list", "GET", "-", cells(200, **API_REFUSED)),
    Row("organizer-dataset-upload-list", "POST", "-", cells(400, **API_REFUSED)),
    Row("organizer-dataset-upload-detail", "GET", "challenge's dataset upload",
        cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-dataset-upload-detail", "DELETE", "challenge's dataset upload",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-dataset-upload-attach", "POST", "challenge's dataset upload",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
    Row("organizer-phase-datasets", "GET", "public phase id", cells(404, **ORGANIZERS_ONLY, **API_REFUSED)),
    Row("organizer-phase-datasets", "GET", "hidden challenge's phase id",
        cells(404, other_organizer=200, operator=200, **API_REFUSED)),
    Row("organizer-phase-datasets", "PATCH", "public phase id",
        cells(404, organizer=400, operator=400, **API_REFUSED)),
]
