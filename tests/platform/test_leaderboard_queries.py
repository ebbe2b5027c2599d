"""Query budget of the leaderboard reads (issue "Security and reliability campaign", check 5): with 200 entries the
leaderboard page, its JSON and CSV exports and the API leaderboard each run a small fixed number of queries,
whatever the number of rows (no query per row, no evaluation loaded). Counts, not times: times are the load
benchmark's (benchmarks/load_site.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from evaluators import scoring
from spinebench.challenges.models import Registration
from spinebench.leaderboards import snapshot_statistics
from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.leaderboards.services import rerank_phase
from spinebench.submissions.models import Evaluation, Submission
from spinebench.submissions.status import Status

from .aasce_data import HIDDEN_ANGLES
from .factories import PhaseFactory, UserFactory

pytestmark = pytest.mark.django_db
ENTRIES = 200


def crowded_phase(entries: int):
    """A phase with `entries` participants, one scored submission each (real per-case metrics from the platform's
    scorer), ranked once, with its statistics computed."""
    phase = PhaseFactory(submission_limit=None)
    rng = np.random.default_rng(0)
    truth = {case: {"angles": np.array(angles, dtype=float)} for case, angles in HIDDEN_ANGLES.items()}
    users = [UserFactory() for _ in range(entries)]
    Registration.objects.bulk_create(
        [Registration(challenge=phase.challenge, user=user, status=Registration.Status.APPROVED) for user in users]
    )
    submissions = Submission.objects.bulk_create(
        [Submission(phase=phase, creator=user, status=Status.SUCCEEDED) for user in users]
    )
    evaluations = []
    for submission in submissions:
        error = rng.uniform(0.5, 8.0)
        predicted = {c: {"angles": np.clip(t["angles"] + rng.normal(0, error, 3), 0, None)} for c, t in truth.items()}
        scores = scoring.score_aasce(truth, predicted)
        metrics = {"case": scores.case, "aggregates": scores.aggregate(list(truth))}
        evaluations.append(Evaluation(submission=submission, metrics=metrics))
    Evaluation.objects.bulk_create(evaluations)
    snapshot = rerank_phase(phase.pk)
    snapshot = LeaderboardSnapshot.objects.get(pk=snapshot.pk)
    snapshot.statistics = snapshot_statistics.compute(snapshot)
    snapshot.statistics_status = LeaderboardSnapshot.StatisticsStatus.READY
    snapshot.save(update_fields=["statistics", "statistics_status"])
    return phase, users


#: Queries of one cold read (nothing of the snapshot decoded or rendered yet in this process), 200 entries or 10:
#: the page runs the session, user, phase, snapshot, role checks of the navigation and quota; the exports and the
#: API the session, user, phase, role and snapshot queries and one read of the snapshot's rows and statistics. The
#: page's count grew by one constant query when the blind-phase check, teams and terms joined the page (23 measured);
#: each role question asked once per request (spinebench.challenges.roles) and the phase's dataset read with it
#: brought it to 14 measured (2 spare). The phase's datasets line (its scored and training datasets with their case
#: counts, from the site's dataset uploads) added three constant queries: 17 measured.
PAGE_QUERIES = 18
EXPORT_QUERIES = 8


def read_urls(phase) -> dict[str, str]:
    args = [phase.challenge.slug, phase.slug]
    return {
        "page": phase.get_absolute_url(),
        "page 2": phase.get_absolute_url() + "?page=2",
        "JSON": reverse("leaderboards:export-json", args=args),
        "CSV": reverse("leaderboards:export-csv", args=args),
        "API": f"/api/phases/{phase.pk}/leaderboard/",
    }


def counted(client, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries.captured_queries), response.content


def test_leaderboard_reads_run_a_bounded_number_of_queries_whatever_the_length(client, django_assert_max_num_queries):
    small, small_users = crowded_phase(10)
    phase, users = crowded_phase(ENTRIES)
    client.force_login(users[0])
    few = {kind: counted(client, url)[0] for kind, url in read_urls(small).items() if kind != "page 2"}
    for kind, url in read_urls(phase).items():
        bound = PAGE_QUERIES if kind.startswith("page") else EXPORT_QUERIES
        with django_assert_max_num_queries(bound):
            response = client.get(url)
        assert response.status_code == 200
        if kind in few:  # 20 times the entries, not one query more (no query per row)
            assert counted(client, url)[0] <= few[kind], kind
    # Warm reads (the snapshot decoded, the fragment rendered) need fewer still, and no evaluation at all.
    for kind, url in read_urls(phase).items():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        sql = [query["sql"] for query in queries.captured_queries]
        assert not [q for q in sql if "submissions_evaluation" in q or "submissions_submission\".\"id\"" in q], kind
        assert len(sql) <= (PAGE_QUERIES if kind.startswith("page") else EXPORT_QUERIES), (kind, sql)


def test_the_cached_leaderboard_fragment_shows_each_page_and_the_newest_snapshot(client):
    phase, users = crowded_phase(150)
    snapshot = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    names = [row["participant"] for row in snapshot.rows]
    first, again, second = (
        leaderboard_names(client, phase.get_absolute_url() + query) for query in ("", "", "?page=2")
    )  # `again` comes from the cache
    assert first == again == names[:100]
    assert second == names[100:]
    # A new scoring writes a new snapshot: the page shows it at once (the key names the snapshot), statistics pending.
    newcomer = UserFactory()
    Registration.objects.create(challenge=phase.challenge, user=newcomer, status=Registration.Status.APPROVED)
    best = min(row["values"]["smape"] for row in snapshot.rows)
    submission = Submission.objects.create(phase=phase, creator=newcomer, status=Status.SUCCEEDED)
    Evaluation.objects.create(
        submission=submission, metrics={"case": {}, "aggregates": {"smape": best / 2, "mae_pt": 0.0, "mae_mt": 0.0}}
    )
    rerank_phase(phase.pk)
    assert leaderboard_names(client, phase.get_absolute_url()) == [newcomer.username, *names[:99]]


def leaderboard_names(client, url: str) -> list[str]:
    """The participants of the leaderboard table of a page, in order."""
    page = client.get(url).content.decode()
    table = page[page.index('id="leaderboard"') : page.index("</table>", page.index('id="leaderboard"'))]
    return re.findall(r'<tr><td>\d+</td><td><a href="/submissions/\d+/">([^<]+)</a>', table)
