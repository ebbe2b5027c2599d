"""gunicorn configuration of the load benchmark (benchmarks/load_site.py): the server's own CPU time per request.

`pre_request` notes the thread's CPU clock (gunicorn's gthread worker handles a request in one thread from start to
end), `post_request` appends `METHOD PATH CPU_MS` to `$SPINEBENCH_TIMING_DIR/<pid>.log`. The CPU time is what the
request cost the server (Python, templates, the database driver), independent of how long it waited for a core on
a busy machine; the wall times of the benchmark include that wait."""

import os
import time
from pathlib import Path

_logs: dict[int, object] = {}


def pre_request(worker, req):
    req.spinebench_cpu = time.thread_time()


def post_request(worker, req, environ, resp):
    started = getattr(req, "spinebench_cpu", None)
    if started is None:
        return
    cpu_ms = (time.thread_time() - started) * 1000
    pid = os.getpid()
    if pid not in _logs:
        _logs[pid] = (Path(os.environ["SPINEBENCH_TIMING_DIR"]) / f"{pid}.log").open("a", buffering=1)
    path = req.path + (f"?{req.query}" if req.query else "")
    _logs[pid].write(f"{req.method} {path} {cpu_ms:.3f}\n")
