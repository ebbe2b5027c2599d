"""The embedded site as `make run` starts it (`spinebench serve`: web server, beat, two workers on the folder broker,
SQLite), on a throwaway var folder and a free port, for tests that need the real thing: concurrency on SQLite, a
request that must return at once, Ctrl-C stopping every process. `site.stop()` sends SIGINT as a terminal's Ctrl-C
does and checks that no process of the site survives."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .celery_worker import REPO, Worker, python_path

#: Variables of the outer (pytest) environment that would point the site at the test services or roots.
OUTER = ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "DATASETS_ROOT", "STATIC_ROOT",
         "SPINEBENCH_BROKER_DIR", "SPINEBENCH_TEST_ROOT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_groups() -> dict[int, int]:
    """pid -> process group id of every process on this machine (from /proc)."""
    groups = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        groups[int(stat.parent.name)] = int(fields[2])
    return groups


class EmbeddedSite:
    def __init__(self, root: Path, **env):
        self.root = Path(root)
        self.var = self.root / "var"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "serve.log"
        self.env = {key: value for key, value in os.environ.items() if key not in OUTER}
        self.env.update(SPINEBENCH_VAR_DIR=str(self.var), PYTHONPATH=python_path(), DEBUG="0",
                        DJANGO_SETTINGS_MODULE="spinebench.settings.local",
                        # Many participants sign in from one address here, on purpose: the API throttles (which the
                        # throttling tests check) would answer 429 to a load the tests mean to send.
                        SPINEBENCH_THROTTLE_ANON="100000/min", SPINEBENCH_THROTTLE_USER="100000/min",
                        SPINEBENCH_THROTTLE_AUTH_TOKEN="100000/min", **env)
        self.process: subprocess.Popen | None = None
        self.child_pids: list[int] = []
        self.left_behind: list[int] = []

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True,
                                check=False, text=True, encoding="utf-8", errors="replace", timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
        return result

    def shell_json(self, script: str):
        """Run `script` in the site's Django (manage.py shell); it prints one JSON line starting with `JSON `."""
        out = self.manage("shell", "-c", script).stdout
        line = next(line for line in out.splitlines() if line.startswith("JSON "))
        return json.loads(line[5:])

    def migrate(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")

    def worker(self, *, queues=("scoring",), pause: dict | None = None, name: str = "worker") -> Worker:
        """A harness worker (tests/harness/celery_worker.py) on this site's database and folder broker, for fault
        tests that kill and restart workers themselves instead of running `serve`."""
        return Worker(env=self.env, log=self.root / f"{name}.log", queues=queues, pause=pause,
                      name=f"{name}@test")

    def start(self, *, timeout: float = 180) -> None:
        self.migrate()
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spinebench.cli", "serve", "--port", str(self.port), "--scoring-concurrency", "2",
             "--torch-threads", "1", "--stop-timeout", "15"],
            cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if self.process.poll() is not None:
                raise RuntimeError(f"spinebench serve exited: {text[-3000:]}")
            if "pids " in text and not self.child_pids:
                listed = text.split("pids ", 1)[1].split(")", 1)[0]
                self.child_pids = [int(pid) for pid in listed.split(", ")]
            if text.count("ready.") >= 2 and self._answers():
                return
            time.sleep(0.5)
        raise RuntimeError(f"spinebench serve did not come up: {self.log.read_text(errors='replace')[-3000:]}")

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def survivors(self) -> list[int]:
        """Processes still alive in the process group of serve or of any child it started."""
        restarted = [int(line.rsplit("(pid ", 1)[1].rstrip(")"))
                     for line in self.log.read_text(errors="replace").splitlines() if "started it again (pid " in line]
        groups = {*self.child_pids, *restarted} | ({self.process.pid} if self.process else set())
        return sorted(pid for pid, group in process_groups().items() if group in groups)

    def stop(self, *, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        """Ctrl-C (SIGINT to serve's process group, as a terminal sends it); returns serve's exit code and sets
        `left_behind` to the site's processes still alive then (then kills them, so no test leaves any)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.left_behind = self.survivors()
            for pid in self.left_behind:  # never leave a test's processes behind, even when the test fails
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def token(self, username: str, password: str) -> str:
        response = requests.post(f"{self.url}/api/auth/token/", data={"username": username, "password": password},
                                 timeout=30)
        response.raise_for_status()
        return response.json()["token"]
