"""A second Docker engine owned by one test: its own dockerd with --data-root, --exec-root, --pidfile and a unix
socket in a fresh folder, no bridge and no iptables rules (SpineBench containers run with network_mode=none), so a
fault test can restart it, or let the platform's recovery remove "orphan" containers, without touching the shared
engine or anyone else's containers. Images get into it with `docker save | docker load`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("dockerd") is not None and shutil.which("docker") is not None


class Engine:
    def __init__(self):
        # A short path: the socket path must fit in a sockaddr_un (108 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="sbf-dockerd-"))
        self.socket = self.root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60) -> None:
        argv = ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "dockerd.pid"), "-H", self.host, "--bridge=none", "--iptables=false",
                "--ip6tables=false"]
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log.read_text(errors='replace')[-3000:]}")
            if self.docker("info", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer: {self.log.read_text(errors='replace')[-3000:]}")

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", "-H", self.host, *args], capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode:
            raise RuntimeError(f"docker {' '.join(args)}: {result.stderr[-2000:]}")
        return result

    def load_from_default_engine(self, image: str) -> None:
        """`docker save IMAGE | docker -H <this engine> load`."""
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "-H", self.host, "load", "-q"], stdin=save.stdout, capture_output=True,
                              text=True, timeout=600, check=False)
        save.stdout.close()
        if save.wait(timeout=60) or load.returncode:
            raise RuntimeError(f"docker save {image} | docker load failed: {load.stderr[-2000:]}")

    def stop(self, *, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def restart(self) -> None:
        """Stop dockerd (it stops its containers, as a service restart does) and start it again on the same folders:
        images stay, containers are gone."""
        self.stop(timeout=60)
        self.start()

    def destroy(self) -> None:
        """Stop the engine (its containers with it) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            for container in self.docker("ps", "-aq", check=False).stdout.split():
                self.docker("rm", "-f", container, check=False)
        self.stop()
        for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
            target = mount.split()[1]
            if target.startswith(str(self.root)):
                subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
