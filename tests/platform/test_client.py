"""The participants' command-line client (client/, `spinebench-client`) against a live server started by the test:
login (token stored 0600), challenges, phases, download with resume (the server answers Range requests with 206),
submit with a method card and --wait (exit 0 with the metrics; exit 1 with the error when scoring fails), status,
leaderboard --json; a server that is down or a missing login give one line and a non-zero exit, no traceback. The
client runs as a separate process, as a participant runs it, and never imports Django."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.files.storage import default_storage

from spinebench.accounts.tokens import issue_token
from spinebench.datasets.services import inputs_archive, training_archive

from .aasce_data import HIDDEN_ANGLES, predictions_csv
from .factories import PhaseFactory, RegistrationFactory

REPO = Path(__file__).resolve().parents[2]
GOOD = {case: tuple(value + 0.5 for value in angles) for case, angles in HIDDEN_ANGLES.items()}


def run_client(*args: str, config: Path, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "client"), "SPINEBENCH_CLIENT_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "spinebench_client", *args], input=stdin, capture_output=True, text=True, env=env,
        cwd=cwd or config.parent.parent, timeout=120,
    )


@pytest.fixture
def site(transactional_db, eager_tasks, live_server, tmp_path):
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    return {"phase": phase, "user": user, "url": live_server.url, "config": tmp_path / "conf" / "client.json"}


def test_the_client_never_imports_django():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, spinebench_client.cli; print(sorted(m for m in sys.modules "
         "if m.split('.')[0] in ('django', 'spinebench', 'torch', 'numpy')))"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "client")}, cwd="/", timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_login_list_submit_wait_status_and_leaderboard(site, tmp_path):
    phase, user, config = site["phase"], site["user"], site["config"]
    done = run_client("login", "--server", site["url"], "--username", user.username, config=config,
                      stdin="correct-horse-battery\n")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    stored = json.loads(config.read_text())
    assert stored["server"] == site["url"] and stored["token"]

    listed = run_client("challenges", config=config)
    assert listed.returncode == 0 and phase.challenge.slug in listed.stdout
    phases = run_client("phases", phase.challenge.slug, config=config)
    assert phases.returncode == 0 and phase.slug in phases.stdout and str(phase.pk) in phases.stdout

    predictions = tmp_path / "predictions.csv"
    predictions.write_bytes(predictions_csv(GOOD))
    submitted = run_client("submit", str(phase.pk), str(predictions), "--method-name", "CliNet", "--paper-url",
                           "https://example.org/clinet", "--wait", "--interval", "0.2", config=config)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "succeeded" in submitted.stdout and "smape:" in submitted.stdout and "rank: 1" in submitted.stdout
    submission_id = submitted.stdout.split("submission ")[1].split()[0]
    assert "succeeded" in run_client("status", submission_id, config=config).stdout

    board = run_client("leaderboard", str(phase.pk), "--json", config=config)
    rows = json.loads(board.stdout)["rows"]
    assert [(row["participant"], row["method_name"], row["paper_url"]) for row in rows] == [
        (user.username, "CliNet", "https://example.org/clinet")
    ]
    assert "CliNet" in run_client("leaderboard", str(phase.pk), config=config).stdout

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"case_id,pt,mt,tl\ncase_a,x,1,1\n")
    failed = run_client("submit", str(phase.pk), str(bad), "--wait", "--interval", "0.2", config=config)
    assert failed.returncode == 1 and "failed" in failed.stdout and "error:" in failed.stdout
    refused = run_client("submit", str(phase.pk), str(predictions), "--code-url", "javascript:alert(1)",
                         config=config)
    assert refused.returncode == 1 and "code_url" in refused.stderr and "Traceback" not in refused.stderr


def test_download_resumes_an_interrupted_download(site, tmp_path):
    phase, user, config = site["phase"], site["user"], site["config"]
    token = issue_token(user=user, name="cli").secret
    assert run_client("login", "--server", site["url"], "--token", config=config, stdin=token + "\n").returncode == 0
    inputs = default_storage.open(inputs_archive(phase.dataset)).read()
    training = default_storage.open(training_archive(phase.training_dataset)).read()
    prefix = f"{phase.challenge.slug}-{phase.slug}"

    # An interrupted run left the first part of the inputs with the server's ETag beside it.
    dest = tmp_path / "data"
    dest.mkdir()
    head = requests.get(f"{site['url']}/api/phases/{phase.pk}/inputs/", headers={"Authorization": f"Token {token}"},
                        timeout=30)
    (dest / f"{prefix}-inputs.zip.part").write_bytes(inputs[:100])
    (dest / f"{prefix}-inputs.zip.part.etag").write_text(head.headers["ETag"])
    done = run_client("download", str(phase.pk), "--dest", str(dest), "--quiet", config=config)
    assert done.returncode == 0, done.stderr
    assert (dest / f"{prefix}-inputs.zip").read_bytes() == inputs
    assert (dest / f"{prefix}-training.zip").read_bytes() == training
    assert sorted(path.name for path in dest.iterdir()) == [f"{prefix}-inputs.zip", f"{prefix}-training.zip"]


def test_server_answers_range_requests(site):
    phase, user = site["phase"], site["user"]
    headers = {"Authorization": f"Token {issue_token(user=user, name='range').secret}"}
    whole = default_storage.open(training_archive(phase.training_dataset)).read()
    size = len(whole)
    for url in (f"{site['url']}/api/datasets/{phase.training_dataset.pk}/download/",):
        full = requests.get(url, headers=headers, timeout=30)
        assert full.status_code == 200 and full.content == whole and full.headers["Accept-Ranges"] == "bytes"
        etag = full.headers["ETag"]
        for spec, first, last in (("10-19", 10, 19), ("100-", 100, size - 1), ("-7", size - 7, size - 1)):
            part = requests.get(url, headers={**headers, "Range": f"bytes={spec}"}, timeout=30)
            assert part.status_code == 206 and part.content == whole[first:last + 1]
            assert part.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        beyond = requests.get(url, headers={**headers, "Range": f"bytes={size}-"}, timeout=30)
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
        changed = requests.get(url, headers={**headers, "Range": "bytes=10-", "If-Range": '"other"'}, timeout=30)
        assert changed.status_code == 200 and changed.content == whole
        same = requests.get(url, headers={**headers, "Range": "bytes=10-", "If-Range": etag}, timeout=30)
        assert same.status_code == 206 and same.content == whole[10:]
        several = requests.get(url, headers={**headers, "Range": "bytes=0-1,5-6"}, timeout=30)
        assert several.status_code == 200 and several.content == whole


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_down_and_not_logged_in_give_one_line_and_a_non_zero_exit(tmp_path):
    missing = run_client("challenges", config=tmp_path / "none.json")
    assert missing.returncode == 2 and "login" in missing.stderr and "Traceback" not in missing.stderr
    config = tmp_path / "client.json"
    config.write_text(json.dumps({"server": f"http://127.0.0.1:{_closed_port()}", "token": "x"}))
    for args in (("challenges",), ("leaderboard", "1"), ("status", "3"), ("download", "1")):
        down = run_client(*args, config=config)
        assert down.returncode == 2 and "Cannot reach the server" in down.stderr, down.stderr
        assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1
    login = run_client("login", "--server", f"http://127.0.0.1:{_closed_port()}", "--token", "abc", config=config)
    assert login.returncode == 2 and "Traceback" not in login.stderr


@pytest.mark.slow  # each command is a fresh interpreter
def test_spinebench_client_runs_the_same_commands(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("platform", ".", "client")),
           "SPINEBENCH_CLIENT_CONFIG": str(tmp_path / "none.json")}
    done = subprocess.run([sys.executable, "-m", "spinebench.cli", "client", "challenges"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("spinebench client: Not logged in")


def test_a_split_phase_through_the_client_shows_the_private_part_only_after_the_reveal(site, tmp_path):
    from spinebench.challenges.visibility import reveal_scores
    from spinebench.submissions.models import Submission

    from .factories import UserFactory

    phase = PhaseFactory(challenge=site["phase"].challenge, score_visibility="split", public_case_ids=["case_a"])
    user, config = site["user"], site["config"]
    run_client("login", "--server", site["url"], "--username", user.username, config=config,
               stdin="correct-horse-battery\n")
    predictions = tmp_path / "predictions.csv"
    predictions.write_bytes(predictions_csv(GOOD))
    submitted = run_client("submit", str(phase.pk), str(predictions), "--wait", "--interval", "0.2", config=config)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    private = Submission.objects.get(phase=phase).private_evaluation.aggregates["smape"]
    shown = [f"{private:.3f}", repr(private)[:7], f"{private:.4g}"]
    final = run_client("leaderboard", str(phase.pk), "--final", config=config)
    assert final.returncode != 0 and "reveal" in final.stderr and "Traceback" not in final.stderr
    for done in (submitted, final, run_client("leaderboard", str(phase.pk), "--json", config=config)):
        assert not any(text in done.stdout + done.stderr for text in shown)
    reveal_scores(phase=phase, actor=UserFactory())
    revealed = run_client("leaderboard", str(phase.pk), "--final", "--json", config=config)
    assert revealed.returncode == 0 and json.loads(revealed.stdout)["rows"][0]["smape"] == private
