"""The embedded default as `make run` serves it (`spinebench serve` on SQLite and the folder broker, a live server
started here on a throwaway var folder): every upload request returns at once with the submission queued, the
workers score it; 20 parallel submissions and three participants submitting at the same moment (3 trials) give no
HTTP 500 and no submission stuck outside a final state (M3); Ctrl-C stops every process of the site."""

import os
import signal
import socket
import threading
import time
from collections import Counter

import pytest
import requests

from spinebench.algorithms.runner import engine_available
from tests.harness.embedded_site import EmbeddedSite

from .aasce_data import predictions_csv

pytestmark = pytest.mark.slow

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
FINAL = ("succeeded", "failed", "cancelled")

SEED = """
import json
from tests.platform.factories import PhaseFactory, RegistrationFactory
phase = PhaseFactory(submission_limit=3)
algorithm = PhaseFactory(challenge=phase.challenge, submission_kind="algorithm")
users = [RegistrationFactory(challenge=phase.challenge).user.username for _ in range(%d)]
print("JSON " + json.dumps({"phase": phase.pk, "algorithm_phase": algorithm.pk, "users": users}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = EmbeddedSite(tmp_path_factory.mktemp("embedded-site"))
    site.start()
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def world(site):
    seeded = site.shell_json(SEED % 25)
    seeded["tokens"] = {user: site.token(user, "correct-horse-battery") for user in seeded["users"]}
    return seeded


def submit(site, phase: int, token: str) -> requests.Response:
    return requests.post(f"{site.url}/api/phases/{phase}/submissions/", headers={"Authorization": f"Token {token}"},
                         files={"file": ("predictions.csv", predictions_csv(GOOD), "text/csv")}, timeout=120)


def at_once(site, phase: int, tokens: list[str]) -> list[requests.Response]:
    """Every token submits once, all released by one barrier; the responses in the tokens' order."""
    barrier = threading.Barrier(len(tokens))
    responses: list = [None] * len(tokens)

    def attempt(index: int, token: str) -> None:
        barrier.wait()
        try:
            responses[index] = submit(site, phase, token)
        except requests.RequestException as error:  # a dropped connection counts as a failure, not a crash
            responses[index] = error

    threads = [threading.Thread(target=attempt, args=(i, token)) for i, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def final_statuses(site, owned: list[tuple[int, str]], *, timeout: float = 180) -> dict[int, str]:
    """Poll each (submission id, its submitter's token) until every submission is in a final state."""
    deadline = time.monotonic() + timeout
    statuses: dict[int, str] = {}
    while time.monotonic() < deadline:
        for pk, token in owned:
            if statuses.get(pk) not in FINAL:
                response = requests.get(f"{site.url}/api/submissions/{pk}/",
                                        headers={"Authorization": f"Token {token}"}, timeout=30)
                assert response.status_code == 200, response.text
                statuses[pk] = response.json()["status"]
        if all(status in FINAL for status in statuses.values()):
            return statuses
        time.sleep(0.5)
    return statuses


def test_twenty_parallel_submissions_no_error_none_stuck(site, world):
    # 15 participants submit once and one participant 5 times (limit 3), all in the same instant.
    users = world["users"][:16]
    tokens = [world["tokens"][user] for user in users[:15]] + [world["tokens"][users[15]]] * 5
    responses = at_once(site, world["phase"], tokens)
    codes = Counter(getattr(response, "status_code", type(response).__name__) for response in responses)
    assert codes == {201: 18, 429: 2}, [getattr(r, "text", r) for r in responses]
    accepted = [response.json() for response in responses if response.status_code == 201]
    # The request only queued the work: nothing was scored inside it. The worker may already have taken one between
    # the commit (which dispatches it) and the response ("scoring"), but none is final when its request answers.
    assert {body["status"] for body in accepted} <= {"queued", "scoring"}
    owned = [(response.json()["id"], token) for response, token in zip(responses, tokens)
             if response.status_code == 201]
    statuses = final_statuses(site, owned)
    assert Counter(statuses.values()) == {"succeeded": 18}, statuses


@pytest.mark.parametrize("trial", [1, 2, 3])
def test_three_participants_at_the_same_moment(site, world, trial):
    users = world["users"][16 + 3 * (trial - 1):16 + 3 * trial]
    tokens = [world["tokens"][user] for user in users]
    responses = at_once(site, world["phase"], tokens)
    assert [getattr(response, "status_code", repr(response)) for response in responses] == [201, 201, 201]
    statuses = final_statuses(site, [(response.json()["id"], token) for response, token in zip(responses, tokens)])
    assert list(statuses.values()) == ["succeeded"] * 3, statuses


def test_algorithm_phase_accepts_uploads_while_its_worker_beats_with_an_engine(site, world):
    """The scoring worker consumes containers-cpu; it serves it only when its container engine answers (this
    machine's engine, checked here independently)."""
    body = requests.get(f"{site.url}/api/phases/{world['algorithm_phase']}/", timeout=30).json()
    if engine_available():
        assert body["accepting_uploads"] is True and body["not_accepting_reason"] == ""
    else:
        assert body["accepting_uploads"] is False
        assert body["not_accepting_reason"].startswith("No CPU container worker is running for this phase")


def test_a_killed_worker_is_started_again_and_scores(site, world):
    scoring_worker = site.child_pids[2]
    os.killpg(scoring_worker, signal.SIGKILL)
    restarted = "serve: scoring worker exited (code -9); started it again"
    deadline = time.monotonic() + 120
    while "ready." not in site.log.read_text(errors="replace").partition(restarted)[2]:
        assert time.monotonic() < deadline, site.log.read_text(errors="replace")[-3000:]
        time.sleep(0.5)
    token = world["tokens"][world["users"][-1]]
    response = submit(site, world["phase"], token)
    assert response.status_code == 201, response.text
    assert final_statuses(site, [(response.json()["id"], token)]) == {response.json()["id"]: "succeeded"}


def test_ctrl_c_stops_every_process(site, world):
    assert len(site.child_pids) == 4 and site.survivors()
    assert site.stop() == 0, site.log.read_text(errors="replace")[-3000:]
    assert site.left_behind == [], site.log.read_text(errors="replace")[-3000:]
    log = site.log.read_text(errors="replace")
    assert "serve: stopping the web server, beat and the workers" in log and "serve: stopped" in log
    assert "still running after" not in log  # every worker stopped within the warm-shutdown time
    # Both workers beat while they lived and marked themselves stopped on the way out.
    beats = site.shell_json(HEARTBEATS)
    assert sorted(beats) == [f"baselines@{socket.gethostname()}", f"scoring@{socket.gethostname()}"]
    assert beats[f"baselines@{socket.gethostname()}"] == {"queues": ["baselines"], "stopped": True}
    served = ["containers-cpu", "scoring"] if engine_available() else ["scoring"]
    assert beats[f"scoring@{socket.gethostname()}"] == {"queues": served, "stopped": True}


HEARTBEATS = """
import json
from spinebench.workers.models import WorkerHeartbeat
print("JSON " + json.dumps({b.hostname: {"queues": b.queues, "stopped": b.stopped is not None}
                            for b in WorkerHeartbeat.objects.all()}))
"""
