"""The in-process mode of the load benchmark (`benchmarks/load_site.py --pages --in-process N`): no server, no
clients and no network, so a busy shared machine disturbs it least. Each main page is requested N times per visitor
(anonymous, a participant, an organizer of the challenge) through Django's test client in this process, over the
phase the benchmark set up, and reports per page and visitor the request's CPU ms (p50 / p95, this thread's CPU
clock around the whole request: middleware, view, templates, database driver), its p95 as a ratio to a static file
served through the same middleware stack, and the database queries it ran (count of the last request; first
requests warm the caches and are left out). `--profile FOLDER` writes one cProfile file per page and visitor
(`python -m pstats FOLDER/challenge-page-participant.prof`).

Anonymous visitors see only a public challenge: the benchmark's challenge is made public for this run."""

from __future__ import annotations

import cProfile
import time

import numpy as np

#: The pages measured per visitor (the case viewer needs an organizer: the test labels are hidden). "cold": every
#: cache emptied before each request (the rendered leaderboard fragment, the decoded snapshot, rendered markdown), as
#: the first view of a new snapshot in each server process.
PAGES = [
    "challenge list",
    "challenge page",
    "leaderboard page",
    "leaderboard page, cold",
    "phase submit page",
    "submission page",
    "static file",
]
VISITORS = ["anonymous", "participant", "organizer"]
WARM_UP = 3


def measure(*, setup: dict, urls: dict[str, str], args) -> int:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from spinebench.challenges.models import Challenge

    setup_test_environment()  # the test client's templates and responses, as in the tests
    Challenge.objects.filter(slug=setup["challenge"]).update(is_public=True)
    User = get_user_model()
    clients = {"anonymous": Client(HTTP_HOST="127.0.0.1")}
    for visitor, username in (("participant", setup["usernames"][0]), ("organizer", setup["organizer"])):
        clients[visitor] = Client(HTTP_HOST="127.0.0.1")
        clients[visitor].force_login(User.objects.get(username=username))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], dict] = {}
    for visitor in VISITORS:
        for page in PAGES:
            url = urls[page.removesuffix(", cold")]
            before = empty_caches if page.endswith(", cold") else (lambda: None)
            if visitor == "anonymous" and page in ("phase submit page", "submission page"):
                continue  # sign-in pages for an anonymous visitor
            client = clients[visitor]
            for _ in range(WARM_UP):
                client.get(url)
            profiler = cProfile.Profile() if args.profile else None
            cpu = []
            for _ in range(args.in_process):
                before()
                with CaptureQueriesContext(connection) as queries:
                    started = time.thread_time()
                    if profiler:
                        profiler.enable()
                    response = client.get(url)
                    if profiler:
                        profiler.disable()
                    cpu.append((time.thread_time() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{visitor} {page} {url}: HTTP {response.status_code}")
            if profiler:
                profiler.dump_stats(args.profile / f"{page.replace(' ', '-')}-{visitor}.prof")
            if args.show_queries:
                print(f"--- {page}, {visitor}: {len(queries)} queries")
                for query in queries.captured_queries:
                    print(f"  {query['sql'][:300]}")
            results[(page, visitor)] = {
                "p50": float(np.percentile(cpu, 50)),
                "p95": float(np.percentile(cpu, 95)),
                "queries": len(queries),
            }
    report(setup=setup, args=args, results=results)
    return 0


def empty_caches() -> None:
    from django.core.cache import cache

    from spinebench.leaderboards import services

    cache.clear()
    for cached in (services._content, services._rows, services._records):
        cached.cache_clear()


def report(*, setup: dict, args, results: dict) -> None:
    print(
        f"\nSpineBench main pages in-process: {args.in_process} requests per page and visitor, "
        f"{setup['entries']} leaderboard entries, {args.cases} cases, {setup['database']}"
    )
    header = ["page", "visitor", "cpu p50", "cpu p95", "p95/static", "queries"]
    print(f"{header[0]:<24}{header[1]:<13}" + "".join(f"{title:>11}" for title in header[2:]))
    for (page, visitor), cells in results.items():
        static = results[("static file", visitor)]["p95"]
        ratio = f"{cells['p95'] / static:.1f}x" if static > 0 else "-"
        print(f"{page:<24}{visitor:<13}{cells['p50']:>11.1f}{cells['p95']:>11.1f}{ratio:>11}{cells['queries']:>11}")
    print("(cpu: ms of this thread's CPU per request through the whole middleware stack; queries: the last request)")
