"""Benchmark: the site under load. Starts gunicorn on 127.0.0.1 (an ephemeral port) over a fresh data folder,
fills one AASCE phase with N submissions (ORM, realistic per-case metrics from the platform's own scorer), ranks it
once (a leaderboard snapshot; its statistics computed and timed), then runs C clients, each a signed-in
participant looping over the pages with think time, for a bounded duration.

Prints, per kind of request, p50 / p95 / p99 / max of the round trip and the server's own CPU time per request
(p50 / p95, from gunicorn's request hooks in benchmarks/load_timing.py: what a request costs, without the wait for
a core), beside a static file served by the same gunicorn in the same run (the reference for what the machine can
do at all: each p95 also as a ratio to the static file's), the errors and the machine's load average during the run
(the wall times of a shared machine say as much about its other users as about the site).

    nice -n 10 .venv/bin/python benchmarks/load_site.py             # issue #16's mix: 1000 submissions, 50 clients
    nice -n 10 .venv/bin/python benchmarks/load_site.py --pages     # issue #14: every main page, same set-up
    .venv/bin/python benchmarks/load_site.py --quick [--pages]      # 300 submissions, 10 clients, 20 s

Two mixes: the default one (leaderboard page, its JSON, the API leaderboard, the submit page, submission POSTs)
and `--pages` (challenge list, challenge page, phase page with its leaderboard, submit page, a submission's page and
the case viewer, the latter as an organizer of the challenge: the test phase's labels are hidden from
participants). Embedded default: SQLite and tasks in-process (a submission POST then scores, re-ranks and computes
the statistics inside the request). With DATABASE_URL (a database of its own: the script migrates it and adds one
challenge), CELERY_BROKER_URL and CACHE_URL set, it uses them and starts a Celery worker on the `scoring` queue.
Goal (issue "Security and reliability campaign", check 5): p95 < 100 ms for reads, 0 errors.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Share of each client's requests by kind (the static file is the reference: as often as the leaderboard page).
LOAD_MIX = {
    "leaderboard page": 0.25,
    "leaderboard JSON": 0.15,
    "API leaderboard": 0.1,
    "phase submit page": 0.2,
    "submission POST": 0.05,
    "static file": 0.25,
}
#: `--pages`: the main pages of issue "The site as a product", equally often.
PAGES_MIX = {
    "challenge list": 1,
    "challenge page": 1,
    "leaderboard page": 1,
    "phase submit page": 1,
    "submission page": 1,
    "case viewer": 1,
    "static file": 1,
}
STATIC_PATH = "/static/admin/css/base.css"
REQUEST_TIMEOUT_S = 30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time between requests, s (default 1)")
    parser.add_argument("--duration", type=float, default=60.0, help="length of the measured run, s (default 60)")
    parser.add_argument("--submissions", type=int, default=1000, help="submissions on the phase (default 1000)")
    parser.add_argument(
        "--participants",
        type=int,
        default=1000,
        help="participants they come from (default 1000: one entry each, the longest leaderboard)",
    )
    parser.add_argument("--cases", type=int, default=100, help="test cases of the phase (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", action="store_true", help="the main pages mix (issue #14) instead of issue #16's")
    parser.add_argument(
        "--quick", action="store_true", help="a quick check: 300 submissions, 10 clients, 20 s, 30 cases"
    )
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="N",
        default=0,
        help="no server and no clients: request each main page N times per visitor (anonymous, participant, "
        "organizer) with Django's test client in this process; reports CPU ms, ratios to the static file and "
        "queries per request (benchmarks/load_in_process.py)",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="FOLDER", help="with --in-process: one cProfile file per page and visitor"
    )
    parser.add_argument(
        "--show-queries", action="store_true", help="with --in-process: print each page's SQL (its last request)"
    )
    args = parser.parse_args()
    if args.quick:
        args.submissions, args.participants, args.clients, args.duration, args.cases = 300, 300, 10, 20.0, 30
    if not 1 <= args.clients <= 500 or not 1 <= args.duration <= 1800 or args.think < 0:
        parser.error("--clients 1..500, --duration 1..1800 s, --think >= 0")
    if args.participants < args.clients or args.submissions < args.participants:
        parser.error("need --submissions >= --participants >= --clients (each client is one participant)")
    return args


def environment(var_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "spinebench.settings.local",
            "DEBUG": "false",
            "SPINEBENCH_VAR_DIR": str(var_dir),
            "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)]),
            "LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
    )
    return env


# ------------------------------------------------------------------------------------------------------ set-up


def populate(args, var_dir: Path) -> dict:
    """Migrate, collect static files and create the phase, its users and submissions (in this process)."""
    os.environ.update(environment(var_dir))
    sys.path[:0] = [str(REPO / "platform"), str(REPO)]
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.db import transaction

    from evaluators import scoring
    from spinebench.challenges.models import Challenge, Phase, Registration
    from spinebench.datasets.services import link_phase_datasets, register_dataset
    from spinebench.leaderboards import snapshot_statistics
    from spinebench.leaderboards.models import LeaderboardSnapshot
    from spinebench.leaderboards.services import rerank_phase
    from spinebench.submissions.models import Evaluation, Submission
    from spinebench.submissions.status import Status

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    rng = np.random.default_rng(args.seed)
    slug = f"load-{int(time.time())}"
    challenge = Challenge.objects.create(slug=slug, title="Load test", description="Benchmark challenge.")
    cases = [f"case_{i:04d}" for i in range(args.cases)]
    folder = Path(os.environ["SPINEBENCH_VAR_DIR"]) / "datasets" / slug / "test"
    truth = write_spines(folder, cases, rng)
    dataset = register_dataset(challenge=challenge, slug="test", folder=folder)
    phase = Phase.objects.create(
        challenge=challenge,
        slug="test",
        title="Test phase",
        task="aasce-cobb",
        submission_limit=None,
        extra_metrics=["mae_pt", "mae_mt", "mae_tl"],
    )
    link_phase_datasets(phase=phase, dataset=dataset)
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"{slug}-p{i:04d}") for i in range(args.participants)])
    password = "load-test-pass-9"
    hashed = User(username="x")
    hashed.set_password(password)
    User.objects.filter(pk__in=[u.pk for u in users]).update(password=hashed.password)
    Registration.objects.bulk_create(
        [Registration(challenge=challenge, user=u, status=Registration.Status.APPROVED) for u in users]
    )
    started = time.perf_counter()
    with transaction.atomic():
        submissions = Submission.objects.bulk_create(
            [
                Submission(phase=phase, creator=users[i % len(users)], status=Status.SUCCEEDED)
                for i in range(args.submissions)
            ]
        )
        evaluations: list[Evaluation] = []
        first_predicted: dict | None = None
        for submission in submissions:
            skill = rng.uniform(0.5, 8.0)  # each submission's typical error in degrees
            predicted = {
                c: {"angles": np.clip(t["angles"] + rng.normal(0, skill, 3), 0, None)} for c, t in truth.items()
            }
            first_predicted = first_predicted or predicted
            scores = scoring.score_aasce(truth, predicted)
            evaluations.append(
                Evaluation(
                    submission=submission,
                    metrics={"case": scores.case, "aggregates": scores.aggregate(cases)},
                )
            )
        Evaluation.objects.bulk_create(evaluations)
        # The case viewer draws a submission's predictions: the first one gets its file (the others need none).
        first = submissions[0]
        assert first_predicted is not None  # --submissions is at least 1
        first.predictions_file.save("predictions.csv", ContentFile(predictions_csv(first_predicted)), save=True)
    created_s = time.perf_counter() - started
    organizer = User.objects.create(username=f"{slug}-organizer", password=hashed.password)
    challenge.organizers.add(organizer)
    started = time.perf_counter()
    with transaction.atomic():
        snapshot = rerank_phase(phase.pk)
    rerank_s = time.perf_counter() - started
    started = time.perf_counter()
    snapshot = LeaderboardSnapshot.objects.get(pk=snapshot.pk)
    if snapshot.statistics_status != "ready":  # with a broker the task went to a queue: compute it here, timed
        snapshot.statistics = snapshot_statistics.compute(snapshot)
        snapshot.statistics_status = "ready"
        snapshot.save(update_fields=["statistics", "statistics_status"])
        statistics_s = time.perf_counter() - started
    else:
        statistics_s = None  # already computed in-process at commit (inside rerank_s)
    csv_body = (
        "case_id,pt,mt,tl\n"
        + "\n".join(
            f"{c},{a[0] + 1:.2f},{a[1] - 1:.2f},{a[2] + 0.5:.2f}" for c, t in truth.items() for a in [t["angles"]]
        )
        + "\n"
    )
    from django.db import connection

    return {
        "challenge": slug,
        "phase": "test",
        "usernames": [u.username for u in users[: args.clients]],
        "organizer": organizer.username,
        "own_submission": {users[i % len(users)].username: s.pk for i, s in enumerate(submissions)},
        "viewer_submission": submissions[0].pk,
        "viewer_case": cases[0],
        "password": password,
        "csv": csv_body.encode(),
        "created_s": created_s,
        "rerank_s": rerank_s,
        "statistics_s": statistics_s,
        "entries": len(snapshot.rows),
        "database": connection.vendor,
        "phase_pk": phase.pk,
    }


def write_spines(folder: Path, cases: list[str], rng) -> dict:
    """A test split of synthetic radiographs with landmarks (what the case viewer draws): each vertebra a tilted
    rectangle, so each case's Cobb angles follow from its tilts; returns {case: {"angles": [pt, mt, tl]}}."""
    import math

    import numpy as np
    from PIL import Image

    from evaluators.cobb import cobb_angles
    from evaluators.layout import CaseEntry, Manifest, write_manifest

    height, width = 190, 100
    truth, landmark_rows, angle_rows = {}, [], ["case_id,pt,mt,tl"]
    for case in cases:
        tilts = np.cumsum(rng.normal(0, 3.0, 17))
        points = []
        for vertebra, tilt in enumerate(tilts):
            c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
            for dx, dy in ((-8, -3), (8, -3), (-8, 3), (8, 3)):
                points.append([50.0 + c * dx - s * dy, 12.0 + 10.0 * vertebra + s * dx + c * dy])
        landmarks = np.array(points)
        angles = np.asarray(cobb_angles(landmarks, height), dtype=float)
        truth[case] = {"angles": angles}
        (folder / "inputs" / case).mkdir(parents=True)
        Image.new("L", (width, height), color=90).save(folder / "inputs" / case / "image.png")
        landmark_rows.append(
            ",".join([case, str(height), str(width), *map(str, landmarks[:, 0]), *map(str, landmarks[:, 1])])
        )
        angle_rows.append(f"{case},{angles[0]:.6f},{angles[1]:.6f},{angles[2]:.6f}")
    header = [
        "case_id",
        "image_height",
        "image_width",
        *(f"x{i}" for i in range(1, 69)),
        *(f"y{i}" for i in range(1, 69)),
    ]
    (folder / "ground_truth").mkdir(parents=True)
    (folder / "ground_truth" / "landmarks.csv").write_text("\n".join([",".join(header), *landmark_rows]) + "\n")
    (folder / "ground_truth" / "angles.csv").write_text("\n".join(angle_rows) + "\n")
    write_manifest(
        folder,
        Manifest(
            task="aasce-cobb", split="test", domain="test", cases=tuple(CaseEntry(id=c) for c in cases), seed=None
        ),
    )
    return truth


def predictions_csv(predicted: dict) -> bytes:
    lines = ["case_id,pt,mt,tl"]
    lines += [f"{case},{p['angles'][0]:.4f},{p['angles'][1]:.4f},{p['angles'][2]:.4f}" for case, p in predicted.items()]
    return ("\n".join(lines) + "\n").encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(base: str, process: subprocess.Popen, log: Path) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(base + STATIC_PATH, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


# ------------------------------------------------------------------------------------------------------ clients


def signed_in(base: str, username: str, password: str):
    import requests

    session = requests.Session()
    page = session.get(base + "/accounts/login/", timeout=REQUEST_TIMEOUT_S)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if found is None:
        raise RuntimeError(f"no CSRF token on the login page (HTTP {page.status_code})")
    token = found.group(1)
    response = session.post(
        base + "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": base + "/accounts/login/"},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT_S,
    )
    if response.status_code != 302:
        raise SystemExit(f"login of {username} failed: HTTP {response.status_code}")
    return session


def request_urls(setup: dict, username: str) -> dict[str, str]:
    challenge, phase = setup["challenge"], setup["phase"]
    return {
        "challenge list": "/challenges/",
        "challenge page": f"/challenges/{challenge}/",
        "leaderboard page": f"/challenges/{challenge}/phases/{phase}/",
        "leaderboard JSON": f"/challenges/{challenge}/phases/{phase}/leaderboard.json",
        "API leaderboard": f"/api/phases/{setup['phase_pk']}/leaderboard/",
        "phase submit page": f"/submissions/new/{challenge}/{phase}/",
        "submission POST": f"/submissions/new/{challenge}/{phase}/",
        "submission page": f"/submissions/{setup['own_submission'][username]}/",
        "case viewer": f"/submissions/{setup['viewer_submission']}/cases/{setup['viewer_case']}/",
        "static file": STATIC_PATH,
    }


def client_loop(*, base, session, organizer, username, mix, setup, think, stop_at, rng, results, lock) -> None:
    urls = request_urls(setup, username)
    kinds, weights = list(mix), list(mix.values())
    time.sleep(rng.uniform(0, think))  # spread the first requests
    while time.monotonic() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        started = time.perf_counter()
        try:
            if kind == "submission POST":
                url = urls[kind]
                token = session.cookies.get("csrftoken")
                response = session.post(
                    base + url,
                    data={"csrfmiddlewaretoken": token, "comment": "load"},
                    files={"file": ("predictions.csv", setup["csv"], "text/csv")},
                    headers={"Referer": base + url},
                    allow_redirects=False,
                    timeout=REQUEST_TIMEOUT_S,
                )
                ok = response.status_code == 302
            else:
                who = organizer if kind == "case viewer" else session
                response = who.get(base + urls[kind], timeout=REQUEST_TIMEOUT_S)
                response.content  # noqa: B018  (read the whole body)
                ok = response.status_code == 200
            error = None if ok else f"HTTP {response.status_code}"
        except Exception as exception:  # noqa: BLE001  (timeouts, refused connections: counted, the client goes on)
            error = f"{type(exception).__name__} ({str(exception)[:120]})"
        elapsed = time.perf_counter() - started
        with lock:
            results[kind].append(elapsed)
            results["sent"].append(("POST" if kind == "submission POST" else "GET", urls[kind], kind))
            if error:
                results["errors"].append(f"{kind}: {error}")
        time.sleep(rng.uniform(0.5 * think, 1.5 * think))


def percentile_cells(values: list[float]) -> list[float]:
    import numpy as np

    if not values:
        return []
    p50, p95, p99 = np.percentile(np.array(values), [50, 95, 99])
    return [p50, p95, p99, max(values)]


def server_cpu(timing_dir: Path, sent: list[tuple[str, str, str]]) -> dict[str, list[float]]:
    """CPU ms per request by kind, from the gunicorn hooks' logs (a request is matched by method and path; the
    sign-in and warm-up requests before the clock ran have paths of their own or are few)."""
    kind_of = {(method, path): kind for method, path, kind in sent}
    cpu: dict[str, list[float]] = defaultdict(list)
    for log in timing_dir.glob("*.log"):
        for line in log.read_text().splitlines():
            method, rest = line.split(" ", 1)
            path, milliseconds = rest.rsplit(" ", 1)
            kind = kind_of.get((method, path))
            if kind:
                cpu[kind].append(float(milliseconds))
    return cpu


class LoadSampler(threading.Thread):
    """The machine's 1-minute load average every 2 s while the clients run."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(2.0):
            self.samples.append(os.getloadavg()[0])


def main() -> int:
    args = parse_args()
    mix = PAGES_MIX if args.pages else LOAD_MIX
    with tempfile.TemporaryDirectory(prefix="spinebench-load-") as tmp:
        var_dir = Path(tmp)
        print(
            f"setting up: {args.submissions} submissions from {args.participants} participants, {args.cases} cases ...",
            flush=True,
        )
        setup = populate(args, var_dir)
        if args.in_process:
            from load_in_process import measure  # benchmarks/ is on the path

            return measure(setup=setup, urls=request_urls(setup, setup["usernames"][0]), args=args)
        env = environment(var_dir)
        timing_dir = var_dir / "timing"
        timing_dir.mkdir()
        env["SPINEBENCH_TIMING_DIR"] = str(timing_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        python = sys.executable
        server_log, worker_log = var_dir / "gunicorn.log", var_dir / "celery.log"
        processes = [
            start(
                [
                    python,
                    "-m",
                    "gunicorn",
                    "spinebench.wsgi:application",
                    "--config",
                    str(REPO / "benchmarks" / "load_timing.py"),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(args.workers),
                    "--threads",
                    str(args.threads),
                    "--timeout",
                    "60",
                    # longer than the longest think time, so an idle connection is never closed just as
                    # its client reuses it
                    "--keep-alive",
                    str(max(5, int(3 * args.think))),
                    # no control socket: the default path in the home folder is shared by every gunicorn
                    "--no-control-socket",
                ],
                env,
                server_log,
            )
        ]
        if os.environ.get("CELERY_BROKER_URL"):
            processes.append(
                start(
                    [
                        python,
                        "-m",
                        "celery",
                        "-A",
                        "spinebench",
                        "worker",
                        "-Q",
                        "scoring",
                        "--concurrency",
                        "1",
                        "--loglevel",
                        "WARNING",
                    ],
                    env,
                    worker_log,
                )
            )
        notes = []
        try:
            wait_until_up(base, processes[0], server_log)
            sessions = [signed_in(base, name, setup["password"]) for name in setup["usernames"]]
            organizer = signed_in(base, setup["organizer"], setup["password"])
            for session in sessions:  # each client has its CSRF cookie from the submit page before the clock runs
                session.get(base + f"/submissions/new/{setup['challenge']}/test/", timeout=REQUEST_TIMEOUT_S)
            if "case viewer" in mix:
                url = request_urls(setup, setup["usernames"][0])["case viewer"]
                status = organizer.get(base + url, timeout=REQUEST_TIMEOUT_S).status_code
                if status != 200:
                    mix = {kind: weight for kind, weight in mix.items() if kind != "case viewer"}
                    notes.append(f"case viewer left out: HTTP {status} for {url} before the run")
            results: defaultdict[str, list] = defaultdict(list)
            lock = threading.Lock()
            stop_at = time.monotonic() + args.duration
            threads = [
                threading.Thread(
                    target=client_loop,
                    daemon=True,
                    kwargs={
                        "base": base,
                        "session": session,
                        "organizer": organizer,
                        "username": username,
                        "mix": mix,
                        "setup": setup,
                        "think": args.think,
                        "stop_at": stop_at,
                        "rng": random.Random(args.seed * 1000 + index),
                        "results": results,
                        "lock": lock,
                    },
                )
                for index, (session, username) in enumerate(zip(sessions, setup["usernames"], strict=True))
            ]
            sampler = LoadSampler()
            sampler.samples.append(os.getloadavg()[0])
            sampler.start()
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(0.0, stop_at - time.monotonic()) + REQUEST_TIMEOUT_S + 5)
            wall = time.monotonic() - started
            sampler.done.set()
            sampler.samples.append(os.getloadavg()[0])
        finally:
            for process in processes:
                stop(process)
        cpu = server_cpu(timing_dir, results["sent"])
        report(args, setup, mix, results, cpu, wall, sampler.samples, notes)
        if results["errors"]:
            tail = [line for line in server_log.read_text(errors="replace").splitlines() if line.strip()][-15:]
            print("gunicorn log (last lines):\n  " + "\n  ".join(tail))
        return 1 if results["errors"] else 0


def report(args, setup, mix, results, cpu, wall: float, load: list[float], notes: list[str]) -> None:
    total = sum(len(results[kind]) for kind in mix)
    print(
        f"\nSpineBench load ({'main pages' if args.pages else 'issue #16 mix'}): {args.clients} clients, think "
        f"{args.think} s, {args.duration:.0f} s, gunicorn {args.workers} workers x {args.threads} threads, "
        f"{setup['database']}, {'Celery worker' if os.environ.get('CELERY_BROKER_URL') else 'tasks in-process'}, "
        f"cache {'CACHE_URL' if os.environ.get('CACHE_URL') else 'per process (locmem)'}"
    )
    print(
        f"phase: {args.submissions} submissions, {setup['entries']} leaderboard entries, {args.cases} cases; "
        f"set-up {setup['created_s']:.1f} s; re-rank + snapshot {setup['rerank_s']:.2f} s"
        + (
            f"; statistics {setup['statistics_s']:.2f} s"
            if setup["statistics_s"] is not None
            else " (statistics computed in-process at commit, included)"
        )
    )
    print(
        f"{total} requests in {wall:.1f} s ({total / wall:.1f}/s); machine load average (1 min) during the run: mean "
        f"{sum(load) / len(load):.1f}, max {max(load):.1f} on {os.cpu_count()} CPUs\n"
    )
    static = percentile_cells(results["static file"])
    header = ["request", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "p95/static", "cpu p50", "cpu p95"]
    print(f"{header[0]:<20}" + "".join(f"{title:>11}" for title in header[1:]))
    for kind in mix:
        cells = percentile_cells(results[kind])
        if not cells:
            print(f"{kind:<20}{0:>11}")
            continue
        ratio = f"{cells[1] / static[1]:.1f}x" if static and static[1] > 0 else "-"
        cpu_cells = percentile_cells(cpu.get(kind, []))
        cpu_text = "".join(f"{value:>11.1f}" for value in cpu_cells[:2]) if cpu_cells else f"{'-':>11}{'-':>11}"
        print(
            f"{kind:<20}{len(results[kind]):>11}"
            + "".join(f"{value * 1000:>11.1f}" for value in cells)
            + f"{ratio:>11}{cpu_text}"
        )
    print("(cpu: the server's CPU ms per request, measured in gunicorn; the other times are client round trips)")
    for note in notes:
        print(f"note: {note}")
    errors = results["errors"]
    print(f"\nerrors: {len(errors)}")
    for line, count in sorted(((e, errors.count(e)) for e in set(errors)), key=lambda item: -item[1])[:10]:
        print(f"  {count:>5} x {line}")


if __name__ == "__main__":
    sys.exit(main())
