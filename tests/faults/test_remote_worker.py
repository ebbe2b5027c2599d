"""A remote container worker host (`spinebench worker --server URL --token TOKEN --queues containers-cpu`) with no
database and no shared disk, on RabbitMQ with a user limited to its queue, against a live site (web server and a
scoring worker on the same broker): it takes the algorithm submission through Celery, gets the job, the archive and
the inputs through the worker-token API (signed URLs), runs the containers on its own engine and reports back. It is
SIGKILLed while a container runs; RabbitMQ redelivers the unacknowledged message (late acks) to a second remote
worker on another scratch folder, which waits for the dead worker's lease to lapse, removes its orphan container,
reruns only the unfinished job, and the site scores the submission once.

The containers run on a second dockerd owned by the test (tests/faults/docker_engine.py), as the other fault tests'
do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.harness.celery_worker import REPO, python_path
from tests.harness.embedded_site import OUTER, EmbeddedSite

from .conftest import wait_until
from .test_container_worker_killed import SEED_ALGORITHM, STATE_ALGORITHM, managed

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.docker]

WORKER_TOKEN = """
import json
from spinebench.accounts.tokens import issue_token
print("JSON " + json.dumps(issue_token(name="gpu-host", kind="worker").secret))
"""

HEARTBEATS = """
import json
from spinebench.workers.models import WorkerHeartbeat
print("JSON " + json.dumps({beat.hostname: beat.queues for beat in WorkerHeartbeat.objects.filter(stopped=None)}))
"""


class RemoteWorker:
    """`spinebench worker` as a remote host runs it: its own scratch folder and var folder, no DATABASE_URL."""

    def __init__(self, tmp_path: Path, *, name: str, server: str, token: str, broker: str, engine):
        self.log = tmp_path / f"{name}.log"
        self.folder = tmp_path / name
        env = {key: value for key, value in os.environ.items() if key not in (*OUTER, "SPINEBENCH_VAR_DIR")}
        env.update(PYTHONPATH=python_path(), DOCKER_HOST=engine.host, SPINEBENCH_VAR_DIR=str(tmp_path / f"{name}-var"),
                   SPINEBENCH_HEARTBEAT_INTERVAL_S="2")
        argv = [sys.executable, "-m", "spinebench.cli", "worker", "--server", server, "--token", token,
                "--queues", "containers-cpu", "--broker", broker, "--dir", str(self.folder), "--name", name]
        self.process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                        start_new_session=True)
        wait_until(lambda: "ready." in self.tail() or self.process.poll() is not None, timeout=90,
                   what=f"remote worker {name} to start")
        assert self.process.poll() is None, self.tail()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def web_server(site: EmbeddedSite) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "django", "runserver", f"127.0.0.1:{site.port}", "--noreload"],
                               cwd=REPO, env=site.env, stdout=(site.root / "web.log").open("ab"),
                               stderr=subprocess.STDOUT, start_new_session=True)

    def answers() -> bool:
        try:
            return requests.get(f"{site.url}/api/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(answers, timeout=90, what="the web server")
    return process


def test_remote_worker_without_database_or_disk_finishes_a_run_and_its_kill_loses_nothing(
        own_engine, slower_archive, tmp_path, rabbitmq_vhost):
    # The engine is shared by the fault tests of this session: start without the image, so the first host must
    # download its archive (another test may have loaded it).
    from spinebench.algorithms.archives import inspect_archive

    image_id = inspect_archive(slower_archive, max_image_bytes=1 << 30).image_id
    own_engine.docker("rmi", "-f", image_id, check=False)
    site = EmbeddedSite(tmp_path / "site", CELERY_BROKER_URL=rabbitmq_vhost.admin_url(),
                        SPINEBENCH_CONTAINER_LEASE_SECONDS="4", SPINEBENCH_HEARTBEAT_INTERVAL_S="2")
    site.var.mkdir(parents=True)
    site.migrate()
    token = site.shell_json(WORKER_TOKEN)
    broker = rabbitmq_vhost.add_queue_user(["containers-cpu"])
    web = web_server(site)
    scoring = site.worker(queues=["scoring"], name="scoring")
    first = second = None
    try:
        scoring.start()
        first = RemoteWorker(tmp_path, name="first", server=site.url, token=token, broker=broker, engine=own_engine)
        # The remote host's heartbeat reaches the site through the API: the phase takes algorithm uploads.
        beats = wait_until(lambda: {name: queues for name, queues in site.shell_json(HEARTBEATS).items()
                                    if name.startswith("gpu-host/first@")},
                           timeout=30, what="the remote worker's heartbeat")
        assert list(beats.values()) == [["containers-cpu"]], beats
        submitted = site.shell_json(SEED_ALGORITHM % {"archive": str(slower_archive), "output_mb": 8})
        state = STATE_ALGORITHM % {"pk": submitted["pk"]}
        # A container of 15 s per case: the kill lands while one runs, whatever the machine's load.
        (orphan,) = wait_until(lambda: managed(own_engine, "--filter", "status=running"), timeout=180,
                               what="a running algorithm container", every=0.5)
        assert site.shell_json(state)["status"] == "running"
        first.kill()
        assert managed(own_engine, "--filter", "status=running") == [orphan]  # it outlives its worker
        second = RemoteWorker(tmp_path, name="second", server=site.url, token=token, broker=broker,
                              engine=own_engine)
        final = wait_until(lambda: (now := site.shell_json(state))["status"] in ("succeeded", "failed") and now,
                           timeout=420, what="the redelivered submission to finish", every=2)
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        scoring.stop()
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
    logs = f"{first.tail() if first else ''}\n---- second\n{second.tail() if second else ''}"
    assert final["status"] == "succeeded" and final["error"] == "", json.dumps(final) + logs
    assert final["evaluations"] == 1
    # Only the job the killed worker was running ran again; the run itself was attempted twice.
    assert final["job_attempts"].count(2) == 1 and set(final["job_attempts"]) == {1, 2}, final
    assert final["run_attempts"] == 2
    assert orphan not in own_engine.docker("ps", "-aq", "--no-trunc").stdout.split()
    assert managed(own_engine, "-a") == []
    # The first host downloaded the archive into its own cache (checked by its SHA-256); the second found the image
    # in the engine already. Each worked in its own scratch folder, never the site's.
    cached = list((first.folder / "cache").glob("*.tar"))
    assert len(cached) == 1 and cached[0].stat().st_size == slower_archive.stat().st_size
    for worker in (first, second):
        assert (worker.folder / "media" / "algorithm-runs").is_dir()
    assert "ImproperlyConfigured" not in logs and "Traceback" not in second.tail(100_000), logs
