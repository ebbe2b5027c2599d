"""API fuzzing (issue #16, systematic check 2): every operation of the OpenAPI schema served at /api/schema/, called
by schemathesis against a live server on 127.0.0.1 (pytest-django's live_server, a fresh database per test with a
small seeded world), anonymously and with a user token. Checks: no 5xx, and every response conforms to the schema
(status code and content type documented, body valid against the documented response schema).

Cases mix three sources per operation: valid values (positive), path parameters pointing at the seeded objects (so
requests reach real challenges, phases, submissions and datasets rather than only 404s), and invalid values
(negative). Hypothesis runs derandomized, so CI repeats the same EXAMPLES cases per operation; uploads are capped."""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections import Counter

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from spinebench.accounts.email_links import mark_verified
from spinebench.accounts.tokens import issue_token
from spinebench.challenges.models import Phase
from spinebench.evaluation.declarations import declare_metrics
from spinebench.evaluation.rescoring import start_rescore
from spinebench.submissions.models import Submission
from spinebench.submissions.services import create_submission
from spinebench.submissions.status import Status
from spinebench.teams import services as teams
from spinebench.uploads.chunked import open_session, write_chunk
from tests.containers.archive_builders import write_archive
from tests.platform.aasce_data import HIDDEN_ANGLES, predictions_csv
from tests.platform.factories import ChallengeFactory, PhaseFactory, RegistrationFactory, aasce_dataset

# Every operation x identity x 20 examples: about half of the quick loop's time, so CI runs it, the quick loop not.
pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("SPINEBENCH_FUZZ_EXAMPLES", "20"))  # per operation; raise it for a deeper local run
PASSWORD = "correct-horse-battery"  # tests.platform.factories.UserFactory's
GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
#: Operations that store files or build archives: fewer cases (each upload is scored at once).
CAPPED = {("POST", "/api/phases/{id}/submissions/"): 8}
#: Operations whose success path the fuzzer cannot reach, with the reason and where that path is tested instead.
NO_SUCCESS_CASE = {
    ("POST", "/api/phases/{id}/evaluation-images/"): "schemathesis sends the explicit archive body as a plain form "
    "field here, which the upload refuses; the success path is tested in tests/containers/test_evaluation_images.py",
}

#: Operations whose success path the fuzzer does not reach (still fuzzed for no 5xx and schema conformance): the
#: bundle import needs a zip part with a file name, which schemathesis' multipart encoding does not send here; its
#: success and refusals are tested in tests/platform/test_bundle_upload.py.
SUCCESS_NOT_REACHED = {("POST", "/api/challenges/import/")}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, from the same generator that serves /api/schema/ (collection needs no
    server; the test then loads the schema the live server actually serves)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )


OPERATIONS = _operations()


@pytest.fixture
def seeded(transactional_db, eager_tasks, tmp_path):
    """One public challenge with a phase (hidden test labels), a registered user with a ranked submission, their
    token, and a spare token of theirs that DELETE may revoke without ending the run's authentication. The user also
    organizes the challenge and has declared the phase's metrics, so the organizers' evaluation endpoints reach their
    success path (an evaluation image upload: a small valid `docker save`-shaped archive; no engine needed)."""
    # Scored against a split with public labels, selection `chosen`: the compare and choice operations can succeed.
    challenge = ChallengeFactory()
    scored = aasce_dataset(challenge, split="train", slug="fuzz-scored", angles=HIDDEN_ANGLES)
    phase = PhaseFactory(challenge=challenge, dataset=scored, show_case_results=True, selection="chosen")
    user = RegistrationFactory(challenge=phase.challenge).user
    phase.challenge.organizers.add(user)
    declare_metrics(phase=phase, actor=user, metrics=[
        {"key": "smape", "label": "SMAPE", "direction": "lower", "primary": True, "scope": "aggregate"}])
    write_archive(tmp_path / "evaluation.tar")
    upload = SimpleUploadedFile("p.csv", predictions_csv(GOOD), content_type="text/csv")
    submission = create_submission(phase=phase, user=user, upload=upload, comment="fuzz")
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    other = create_submission(
        phase=phase, user=RegistrationFactory(challenge=phase.challenge).user,
        upload=SimpleUploadedFile("p.csv", predictions_csv(HIDDEN_ANGLES), content_type="text/csv"),
    )
    spare = issue_token(user=user, name="spare")
    # The user also organizes the challenge, so that organizers' operations reach their success path: a re-score job
    # to read, a blind phase to reveal, and a queued submission to cancel.
    phase.challenge.organizers.add(user)
    job = start_rescore(phase=phase, actor=user)
    blind = PhaseFactory(challenge=phase.challenge, score_visibility=Phase.ScoreVisibility.BLIND)
    waiting = Submission.objects.create(phase=phase, creator=user, status=Status.QUEUED)
    from spinebench.notifications.models import Notification

    notification = Notification.objects.filter(user=user).first() or Notification.objects.create(
        user=user, kind="submission_succeeded", title="fuzz", body="fuzz", link="/")
    # Teams: the user leads a team of the phase's challenge (which they also organize, for the team-size cap) with a
    # pending invitation out, and is invited to a team of a second challenge, where they are in no team yet.
    mark_verified(user=user, email=user.email)
    phase.challenge.organizers.add(user)
    team = teams.create_team(challenge=phase.challenge, user=user, name="fuzz team")
    sent = teams.invite(team=team, by=user, who=RegistrationFactory(challenge=phase.challenge).user.username)
    spare_invitee = RegistrationFactory(challenge=phase.challenge).user
    elsewhere = PhaseFactory().challenge
    RegistrationFactory(challenge=elsewhere, user=user)
    host = RegistrationFactory(challenge=elsewhere).user
    mark_verified(user=host, email=host.email)
    received = teams.invite(team=teams.create_team(challenge=elsewhere, user=host, name="host team"), by=host,
                            who=user.username)
    # The user also organizes the challenge (with a co-organizer to remove), which has terms, a pending applicant
    # and a finished bundle import of theirs: the console's operations reach their success paths too.
    from spinebench.challenges.models import ChallengeTerms, Registration
    from spinebench.organizers.models import BundleImport
    from tests.platform.factories import UserFactory

    co_organizer, outsider = UserFactory(), UserFactory()
    phase.challenge.organizers.add(user, co_organizer)
    ChallengeTerms.objects.create(challenge=phase.challenge, version=1, text="fuzz terms")
    applicant = RegistrationFactory(challenge=phase.challenge, status=Registration.Status.PENDING)
    bundle_import = BundleImport.objects.create(uploader=user, archive="bundles/fuzz.zip", slug="fuzz-import")
    # A registration question and an announcement of the challenge to read, edit, move and delete.
    from spinebench.challenges.models import Announcement, RegistrationQuestion

    question = RegistrationQuestion.objects.create(challenge=phase.challenge, label="Fuzz question", required=False)
    RegistrationQuestion.objects.create(challenge=phase.challenge, label="Second question", required=False, order=1)
    announcement = Announcement.objects.create(challenge=phase.challenge, title="Fuzz news", body="*news*")
    dataset_upload, dataset_session = _dataset_upload(challenge=phase.challenge, user=user, tmp_path=tmp_path)
    organizers = "/api/organizers/challenges/{slug}/"
    # Explicit bodies besides the generated ones (which are mostly refused before reaching the service): the token
    # exchange with the user's real password, and real files for the upload: a valid predictions CSV and hostile ones
    # (garbage bytes, a formula cell with an unknown case and non-finite numbers, an empty file).
    bodies = {
        ("POST", "/api/auth/token/"): [{"username": user.username, "password": PASSWORD, "name": "fuzz exchange"}],
        ("POST", "/api/phases/{id}/chosen/"): [{"submissions": [submission.pk]}, {"submissions": []}],
        ("POST", "/api/rescore-jobs/"): [{"phase": phase.pk, "note": "fuzz"}],
        ("POST", "/api/phases/{id}/submissions/"): [
            {"file": predictions_csv(GOOD), "comment": "fuzz"},
            {"file": bytes(range(256)) * 4},
            {"file": b"case_id,pt,mt,tl\n=HYPERLINK(1),1,2,3\ncase_z,1e309,-0,nan\n", "comment": "x" * 500},
            {"file": b""},
        ],
        ("POST", "/api/teams/"): [{"challenge": elsewhere.slug, "name": "fuzz created"}],
        ("POST", "/api/teams/{id}/invite/"): [{"who": spare_invitee.username}],
        ("POST", "/api/teams/{id}/transfer/"): [{"to": user.username}],
        ("PUT", "/api/team-caps/{slug}/"): [{"max_team_size": 3}],
        ("POST", "/api/phases/{id}/evaluation-images/"): [{"archive": (tmp_path / "evaluation.tar").read_bytes()}],
        ("PUT", "/api/phases/{id}/metric-declaration/"): [{"metrics": [
            {"key": "smape", "label": "SMAPE", "direction": "lower", "primary": True, "scope": "case"},
            {"key": "mae_mt", "label": "MAE main thoracic", "direction": "lower", "primary": False,
             "scope": "aggregate"}], "predictions_format": "csv", "output_files": []}],
        ("POST", organizers + "organizers/"): [{"user": outsider.username}],
        ("POST", organizers + "phases/"): [{"slug": "fuzz-phase", "title": "Fuzz", "task": "aasce-cobb"}],
        ("POST", organizers + "registrations/decide/"): [{"registrations": [applicant.pk], "decision": "approve"}],
        ("POST", organizers + "terms/"): [{"text": "Version two of the fuzz terms."}],
        ("POST", "/api/organizers/phases/{id}/move/"): [{"direction": "down"}],
        ("POST", organizers + "questions/"): [{"label": "Role", "kind": "choice", "options": ["a", "b"]}],
        ("POST", organizers + "announcements/"): [{"title": "Fuzz", "body": "**bold**", "email_participants": True}],
        ("POST", "/api/organizers/questions/{id}/move/"): [{"direction": "down"}],
        ("POST", "/api/challenges/{slug}/register/"): [{"answers": {}}, {"answers": {"question_0": "x"}}],
        ("POST", "/api/organizers/dataset-uploads/"): [
            {"challenge": phase.challenge.slug, "slug": "fuzz-new", "upload": str(dataset_session.pk)}],
        ("POST", "/api/organizers/dataset-uploads/{id}/attach/"): [{"phase": phase.pk, "role": "training"}],
        ("PATCH", "/api/organizers/phases/{id}/datasets/"): [{"training_dataset": None}],
    }
    # Chunked uploads: an open session (a chunk with its digest at offset 0 succeeds) and a full one to finalise.
    chunk = bytes(range(256)) * 4
    receiving = open_session(owner=user, kind="algorithm_archive", size=len(chunk),
                             sha256=hashlib.sha256(chunk).hexdigest())
    full = open_session(owner=user, kind="predictions_zip", size=len(chunk), sha256=hashlib.sha256(chunk).hexdigest())
    write_chunk(session=full, offset=0, length=len(chunk), chunk_sha256=hashlib.sha256(chunk).hexdigest(),
                read=io.BytesIO(chunk).read)
    bodies[("PUT", "/api/uploads/{id}/")] = [chunk]
    return {
        "bodies": bodies,
        "queries": {("GET", "/api/submissions/{id}/compare/"): {"with": other.pk},
                    ("GET", "/api/monitor/submissions/"): {"challenge": phase.challenge.slug}},
        "extras": {("PUT", "/api/uploads/{id}/"): {
            "headers": {"Upload-Chunk-SHA256": hashlib.sha256(chunk).hexdigest()}, "query": {"offset": 0}}},
        "token": issue_token(user=user, name="fuzz").secret,
        "ids": {"phases": phase.pk, "submissions": submission.pk, "datasets": phase.training_dataset_id,
                "tokens": spare.token.pk, "notifications": notification.pk, "uploads": str(receiving.pk),
                "teams": team.pk, "team-invitations": sent.pk, "rescore-jobs": job.pk, "imports": bundle_import.pk,
                "questions": question.pk, "announcements": announcement.pk,
                "dataset-uploads": dataset_upload.pk},
        # Operations whose success needs another object of the same collection than the others get.
        "path_ids": {"/api/team-invitations/{id}/accept/": received.pk,
                     "/api/team-invitations/{id}/decline/": received.pk,
                     "/api/uploads/{id}/finalise/": str(full.pk),
                     "/api/phases/{id}/reveal/": blind.pk, "/api/submissions/{id}/cancel/": waiting.pk},
        "slug": phase.challenge.slug,
        "username": co_organizer.username,
    }


def _dataset_upload(*, challenge, user, tmp_path):
    """A checked (ready) dataset upload of the challenge, never attached, and a finished chunked session of kind
    `dataset` holding another sound dataset zip: the dataset operations reach their success paths."""
    from django.conf import settings as django_settings

    from spinebench.organizers.models import DatasetUpload
    from spinebench.uploads.chunked import finalise
    from tests.platform.aasce_data import TRAIN_ANGLES, write_aasce_dataset
    from tests.platform.test_dataset_uploads import folder_zip

    folder = write_aasce_dataset(django_settings.DATASETS_ROOT / challenge.slug / "fuzz-upload", TRAIN_ANGLES,
                                 split="train")
    ready = DatasetUpload.objects.create(
        challenge=challenge, uploader=user, archive="datasets/fuzz.zip", slug="fuzz-upload",
        status=DatasetUpload.Status.READY, folder=f"{challenge.slug}/fuzz-upload", report={"cases": 2},
    )
    content = folder_zip(write_aasce_dataset(tmp_path / "fuzz-session", TRAIN_ANGLES, split="train")).read()
    digest = hashlib.sha256(content).hexdigest()
    session = open_session(owner=user, kind="dataset", size=len(content), sha256=digest)
    write_chunk(session=session, offset=0, length=len(content), chunk_sha256=digest, read=io.BytesIO(content).read)
    assert folder.is_dir()
    return ready, finalise(session=session)


def _real_parameters(path: str, seeded: dict) -> dict:
    parameters = {}
    if "{slug}" in path:
        parameters["slug"] = seeded["slug"]
    if "{username}" in path:
        parameters["username"] = seeded["username"]
    if "{id}" in path:
        collection = re.search(r"/([\w-]+)/\{id\}", path).group(1)
        parameters["id"] = seeded["path_ids"].get(path, seeded["ids"][collection])
    return parameters


def _fuzz(live_server, seeded, method: str, path: str, headers: dict) -> list[int]:
    """Run the operation's cases; the status codes received, in order."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    operation = schema[path][method]
    sources = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    real = _real_parameters(path, seeded)
    if real:
        sources.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    media_type = next(iter(operation.body)).media_type if operation.body else None
    if (method, path) in seeded["queries"]:
        sources.append(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real, query=seeded["queries"][method, path])
        )
    sources += [
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real, body=body, media_type=media_type,
                              **seeded["extras"].get((method, path), {}))
        for body in seeded["bodies"].get((method, path), ())
    ]
    calls = []

    @settings(
        max_examples=CAPPED.get((method, path), EXAMPLES), deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(sources))
    def run(case):
        response = case.call(base_url=live_server.url, headers=headers)
        calls.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()
    print(f"{method} {path}: {len(calls)} calls, statuses {dict(sorted(Counter(calls).items()))}")
    return calls


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("identity", ["anonymous", "user-token"])
def test_operation_conforms_and_never_fails(live_server, seeded, identity, method, path):
    headers = {"Authorization": f"Token {seeded['token']}"} if identity == "user-token" else {}
    statuses = _fuzz(live_server, seeded, method, path, headers)
    if identity == "user-token" and (method, path) not in NO_SUCCESS_CASE and (method, path) not in SUCCESS_NOT_REACHED:
        assert any(200 <= status < 300 for status in statuses), statuses


def test_every_served_operation_is_fuzzed(live_server):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/").raw_schema
    served = sorted((m.upper(), p) for p, item in schema["paths"].items() for m in item
                    if m in {"get", "post", "put", "patch", "delete"})
    assert served == OPERATIONS and len(served) >= 15

