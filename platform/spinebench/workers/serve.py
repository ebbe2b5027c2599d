"""`spinebench serve`: the whole site on one host, as `make run` starts it. Four processes, each in its own process
group so that Ctrl-C reaches only this supervisor, which then stops them in order:

- the web server (Django's, threaded, no autoreload);
- celery beat (the sweeps: time limits, expired leases, container recovery, pruning);
- worker `scoring@host` on queues `scoring,containers-cpu` (plus `containers-gpu` with --gpu);
- worker `baselines@host` on queue `baselines`, concurrency 1, torch and BLAS capped to --torch-threads threads, so
  a baseline training never takes the cores scoring needs.

Every request only queues work; the workers do it, on the broker of the settings (the folder broker under
var/broker/ by default, Redis or RabbitMQ when CELERY_BROKER_URL says so). A child that dies is started again (a
killed worker's job is requeued by the lease sweep); one that keeps dying stops the whole site.

Stopping (SIGINT or SIGTERM to this process): SIGTERM to each child (a worker finishes its current task: warm
shutdown), then after --stop-timeout seconds SIGQUIT to the workers left (cold shutdown: running tasks are given up
and their messages go back to the queue), then SIGKILL to every process group still alive."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

RESTARTS_PER_MINUTE = 5


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    is_worker: bool = False
    process: subprocess.Popen | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.starts = [t for t in self.starts if time.monotonic() - t < 60] + [time.monotonic()]
        self.process = subprocess.Popen(self.argv, env=self.env, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int, *, group: bool = False) -> None:
        if self.process is None:
            return
        try:
            if group:
                os.killpg(self.process.pid, signum)  # the session leader's pid is its process group id
            elif self.alive:
                self.process.send_signal(signum)
        except ProcessLookupError:
            pass


def default_torch_threads() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


def children(*, host: str, port: int, scoring_concurrency: int, torch_threads: int, gpu: bool,
             beat_schedule: str) -> list[Child]:
    python = sys.executable
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    base_env.setdefault("DJANGO_SETTINGS_MODULE", "spinebench.settings.local")
    node = socket.gethostname()
    worker = [python, "-m", "celery", "-A", "spinebench", "worker", "--without-gossip", "--without-mingle",
              "--prefetch-multiplier", "1", "-l", "INFO"]
    scoring_queues = "scoring,containers-cpu" + (",containers-gpu" if gpu else "")
    capped = {name: str(torch_threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return [
        Child("web", [python, "-m", "django", "runserver", f"{host}:{port}", "--noreload"], base_env),
        Child("beat", [python, "-m", "celery", "-A", "spinebench", "beat", "-l", "INFO", "-s", beat_schedule],
              base_env),
        Child("scoring worker", [*worker, "-Q", scoring_queues, "-n", f"scoring@{node}",
                                 "--concurrency", str(scoring_concurrency)], base_env, is_worker=True),
        Child("baselines worker", [*worker, "-Q", "baselines", "-n", f"baselines@{node}", "--concurrency", "1"],
              {**base_env, **capped, "SPINEBENCH_TORCH_THREADS": str(torch_threads)}, is_worker=True),
    ]


def stop(processes: list[Child], *, timeout: float) -> None:
    for child in processes:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(child.alive for child in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    late = [child for child in processes if child.alive]
    for child in late:
        print(f"serve: {child.name} still running after {timeout:.0f} s; giving up its current task", flush=True)
        child.signal(signal.SIGQUIT if child.is_worker else signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(child.alive for child in late) and time.monotonic() < deadline:
        time.sleep(0.2)
    for child in processes:  # whatever is left, pool children orphaned by a dead parent included
        child.signal(signal.SIGKILL, group=True)
        if child.process is not None:
            child.process.wait()


def serve(*, host: str = "127.0.0.1", port: int = 8000, scoring_concurrency: int = 2, torch_threads: int = 0,
          gpu: bool = False, stop_timeout: float = 30.0, beat_schedule: str) -> int:
    stopping: list[int] = []

    def request_stop(signum, _frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = children(host=host, port=port, scoring_concurrency=scoring_concurrency,
                         torch_threads=torch_threads or default_torch_threads(), gpu=gpu,
                         beat_schedule=beat_schedule)
    status = 0
    try:
        for child in processes:
            child.start()
        print(f"serve: SpineBench at http://{host}:{port}/ with beat and two workers "
              f"(pids {', '.join(str(child.pid) for child in processes)}); Ctrl-C stops them all", flush=True)
        while not stopping:
            for child in processes:
                if child.alive or stopping:
                    continue
                if len(child.starts) >= RESTARTS_PER_MINUTE:
                    print(f"serve: {child.name} exited {RESTARTS_PER_MINUTE} times within a minute; stopping",
                          flush=True)
                    stopping.append(0)
                    status = 1
                    break
                code = None if child.process is None else child.process.returncode
                child.start()
                print(f"serve: {child.name} exited (code {code}); started it again (pid {child.pid})",
                      flush=True)
            time.sleep(0.5)
    finally:
        print("serve: stopping the web server, beat and the workers", flush=True)
        stop(processes, timeout=stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("serve: stopped", flush=True)
    return status
