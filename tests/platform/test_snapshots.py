"""Leaderboard snapshots: every re-rank writes one, its statistics are computed by the background task (never by a
view), the pages and exports read it without touching per-case metrics, and the CSV export defuses formula cells."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from evaluators import statistics
from evaluators.layout import CaseEntry, Manifest, write_manifest
from spinebench.datasets.services import link_phase_datasets, register_dataset
from spinebench.leaderboards import snapshot_statistics
from spinebench.leaderboards.exports import safe_csv_cell
from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.leaderboards.services import rerank_phase
from spinebench.leaderboards.tasks import compute_snapshot_statistics
from spinebench.submissions.models import Evaluation

from .conftest import csv_upload
from .factories import (
    ChallengeFactory,
    PhaseFactory,
    RegistrationFactory,
    UserFactory,
    aasce_dataset,
)

pytestmark = pytest.mark.django_db

ANGLES = {f"case_{i:02d}": (20.0 + 1.7 * i, 15.0 + 0.9 * i, 10.0 + 0.4 * i) for i in range(12)}


def shifted(by: float, *, every_other: float = 0.0) -> dict:
    return {
        case: tuple(v + by + (every_other if index % 2 else 0.0) for v in angles)
        for index, (case, angles) in enumerate(ANGLES.items())
    }


def twelve_case_phase(**fields):
    phase = PhaseFactory(**fields)
    link_phase_datasets(phase=phase, dataset=aasce_dataset(phase.challenge, split="test", slug="twelve", angles=ANGLES))
    return phase


def submit(client, phase, user, predicted, capture):
    client.force_login(user)
    with capture(execute=True):
        client.post(
            reverse("submissions:create", args=[phase.challenge.slug, phase.slug]), {"file": csv_upload(predicted)}
        )
    client.logout()


@pytest.fixture
def ranked_phase(client, eager_tasks, django_capture_on_commit_callbacks):
    """A 12-case AASCE phase with three entries: near (best), middling, and far (worse on every case)."""
    phase = twelve_case_phase()
    users = [RegistrationFactory(challenge=phase.challenge).user for _ in range(3)]
    for user, predicted in zip(users, (shifted(0.5, every_other=0.3), shifted(2.0, every_other=-1.0), shifted(9.0))):
        submit(client, phase, user, predicted, django_capture_on_commit_callbacks)
    return phase, users


def test_every_rerank_writes_a_snapshot_and_its_statistics(ranked_phase):
    phase, users = ranked_phase
    snapshots = LeaderboardSnapshot.objects.filter(phase=phase)
    assert snapshots.count() == 3  # one per scoring
    latest = snapshots.latest()
    assert latest.statistics_status == "ready" and latest.evaluation_version == 1 and latest.kind == "live"
    assert [row["participant"] for row in latest.rows] == [user.username for user in users]
    assert [row["rank"] for row in latest.rows] == [1, 2, 3]
    assert latest.metrics[0] == {"key": "smape", "direction": "lower"}

    # The interval is the bootstrap of the stored case values in sorted case order, seed 0, 1000 resamples.
    for row in latest.rows:
        cases = Evaluation.objects.get(submission_id=row["submission"]).case_metrics
        mean, low, high = statistics.mean_ci(values=[cases[c]["smape"] for c in sorted(cases)], samples=1000, seed=0)
        entry = latest.statistics["entries"][str(row["submission"])]
        assert (entry["ci_low"], entry["ci_high"]) == pytest.approx((low, high), abs=1e-12)
        assert row["values"]["smape"] == pytest.approx(mean)
        assert entry["ci_low"] <= row["values"]["smape"] <= entry["ci_high"]
    far = latest.statistics["entries"][str(latest.rows[2]["submission"])]
    assert far["stability"] == 1.0 and far["rank_median"] == 3
    significance = latest.statistics["significance"]
    assert significance["submissions"] == [row["submission"] for row in latest.rows]
    assert significance["better"][0][2] and significance["better"][1][2] and not significance["better"][2][0]
    assert str(latest.rows[0]["submission"]) in latest.statistics["rank_counts"]

    # Only ranks, aggregates and statistics: no case id, no per-case value, no curve.
    stored = json.dumps({"rows": latest.rows, "statistics": latest.statistics})
    assert "case_0" not in stored and "fpr" not in stored, stored[
        max(0, stored.find("case_0") - 200) : stored.find("case_0") + 50
    ]
    case_values = {
        f"{value:.6f}"
        for e in Evaluation.objects.filter(submission__phase=phase)
        for c in e.case_metrics.values()
        for value in c.values()
    }
    assert not any(text in stored for text in case_values)


def test_views_read_the_snapshot_and_never_compute(client, ranked_phase, monkeypatch):
    phase, users = ranked_phase

    def refuse(*args, **kwargs):
        raise AssertionError("a view computed statistics")

    for name in ("bootstrap_means", "bootstrap_ranks", "significance_matrix", "percentile_intervals", "mean_ci"):
        monkeypatch.setattr(statistics, name, refuse)
    monkeypatch.setattr(snapshot_statistics, "compute", refuse)
    urls = [
        phase.get_absolute_url(),
        reverse("leaderboards:export-json", args=[phase.challenge.slug, phase.slug]),
        reverse("leaderboards:export-csv", args=[phase.challenge.slug, phase.slug]),
        f"/api/phases/{phase.pk}/leaderboard/",
    ]
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        touched = [q["sql"] for q in queries.captured_queries if "submissions_evaluation" in q["sql"]]
        assert not touched, f"{url} read evaluations: {touched}"
    page = client.get(phase.get_absolute_url()).content.decode()
    start = page.index('<section class="leaderboard-statistics"')
    section = page[start : page.index("</section>", start)]
    assert section.count('class="ci-bar"') == 3
    assert 'class="rank-plot"' in section and 'class="significance-map"' in section
    assert "style=" not in section and "<script" not in section
    first, second, third = (user.username for user in users)
    assert f"<li>#1 {first}: significantly better than #2 {second}, #3 {third}</li>" in section
    assert f"<li>#3 {third}: not significantly better than any other of these</li>" in section
    data = client.get(urls[1]).json()
    assert data["snapshot"]["statistics_status"] == "ready"
    assert data["rows"][0]["ci_low"] == data["statistics"]["entries"][str(data["rows"][0]["submission"])]["ci_low"]


def test_pending_statistics_show_the_previous_ones(client, ranked_phase):
    phase, _ = ranked_phase
    ready = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    pending = rerank_phase(phase.pk)  # inside the test's transaction: the task waits for a commit that never comes
    assert pending.statistics_status == "pending" and pending.pk != ready.pk
    page = client.get(phase.get_absolute_url()).content.decode()
    assert 'id="statistics-pending"' in page and ready.created.strftime("%Y-%m-%d %H:%M") in page
    assert page.count('class="ci-bar"') == 3


def test_older_pending_snapshot_is_superseded_and_a_failure_is_final(ranked_phase, monkeypatch):
    phase, _ = ranked_phase
    older, newer = rerank_phase(phase.pk), rerank_phase(phase.pk)
    assert compute_snapshot_statistics(snapshot_pk=older.pk) == "superseded"
    monkeypatch.setattr(snapshot_statistics, "compute", lambda snapshot: 1 / 0)
    assert compute_snapshot_statistics(snapshot_pk=newer.pk) == "failed"
    newer.refresh_from_db()
    assert newer.statistics_status == "failed" and "ZeroDivisionError" in newer.statistics["unavailable"]["ci"]
    assert compute_snapshot_statistics(snapshot_pk=newer.pk) == "done"  # a redelivered message does nothing


def test_hidden_phase_statistics_stay_hidden(client, eager_tasks, django_capture_on_commit_callbacks):
    phase = twelve_case_phase(is_public=False)
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    for url in (phase.get_absolute_url(), reverse("leaderboards:export-json", args=[phase.challenge.slug, phase.slug])):
        assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("alice", "alice"),
        ("a=b", "a=b"),
        (-1.5, -1.5),
        (None, None),
        (True, True),
        (3, 3),
    ],
)
def test_safe_csv_cell(value, written):
    assert safe_csv_cell(value) == written


def test_csv_export_defuses_formula_names(client, eager_tasks, django_capture_on_commit_callbacks):
    phase = twelve_case_phase()
    user = UserFactory(username="=cmd|'/C calc'!A0")
    RegistrationFactory(challenge=phase.challenge, user=user)
    submit(client, phase, user, shifted(1.0), django_capture_on_commit_callbacks)
    text = client.get(reverse("leaderboards:export-csv", args=[phase.challenge.slug, phase.slug])).content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["participant"] == "'=cmd|'/C calc'!A0"
    assert float(rows[0]["smape"]) > 0 and float(rows[0]["ci_low"]) <= float(rows[0]["smape"])


# ------------------------------------------------------------------------------ set-level metric (fracture AUC)

FRACTURE_CASES = [f"case_{i:02d}" for i in range(12)]


def grade(i: int, j: int) -> int:
    """Vertebra j of case i: fractured (grade 1) on a fixed pattern that leaves both classes among the patients."""
    return int((i + j) % 3 == 0 and i % 2 == 1)


def fracture_phase():
    challenge = ChallengeFactory()
    folder = settings.DATASETS_ROOT / challenge.slug / "fracture-test"
    (folder / "ground_truth").mkdir(parents=True, exist_ok=True)
    rows = ["case_id,vertebra,grade"] + [
        f"{case},{name},{grade(i, j)}" for i, case in enumerate(FRACTURE_CASES) for j, name in enumerate(("L1", "L2"))
    ]
    (folder / "ground_truth" / "vertebrae.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    write_manifest(
        folder,
        Manifest(
            task="fracture-ct",
            split="test",
            domain="test",
            cases=tuple(CaseEntry(id=c) for c in FRACTURE_CASES),
            seed=None,
        ),
    )
    dataset = register_dataset(challenge=challenge, slug="fracture-test", folder=folder)
    return PhaseFactory(
        challenge=challenge, task="fracture-ct", dataset=dataset, training_dataset=None, extra_metrics=[]
    )


def test_set_level_auc_gets_an_interval_by_reevaluating_resamples(
    client, eager_tasks, django_capture_on_commit_callbacks
):
    from sklearn.metrics import roc_auc_score

    phase = fracture_phase()
    user = RegistrationFactory(challenge=phase.challenge).user
    rng = np.random.default_rng(3)
    patient_scores = {case: float(np.round(rng.uniform(), 3)) for case in FRACTURE_CASES}
    lines = ["case_id,vertebra,probability"]
    for case in FRACTURE_CASES:
        lines += [f"{case},L1,0.5", f"{case},L2,0.4", f"{case},patient,{patient_scores[case]}"]
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("submissions:create", args=[phase.challenge.slug, phase.slug]),
            {"file": csv_upload(content=("\n".join(lines) + "\n").encode())},
        )
    snapshot = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    assert snapshot.statistics_status == "ready"
    entry = snapshot.statistics["entries"][str(snapshot.rows[0]["submission"])]

    # Independent re-derivation: scikit-learn's AUC on the patient arrays of each documented case resample.
    grades = {}
    for i, case in enumerate(FRACTURE_CASES):
        grades[case] = max(grade(i, j) for j in range(2))
    labels = np.array([grades[c] for c in sorted(FRACTURE_CASES)])
    scores = np.array([patient_scores[c] for c in sorted(FRACTURE_CASES)])
    values = []
    for row in np.random.default_rng(0).integers(0, 12, size=(snapshot_statistics.SET_LEVEL_SAMPLES, 12)):
        if len(set(labels[row])) == 2:
            values.append(roc_auc_score(labels[row], scores[row]))
    assert (entry["ci_low"], entry["ci_high"]) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12)
    assert snapshot.statistics["significance"] is None
    assert "set-level" in snapshot.statistics["unavailable"]["significance"]


def test_figures_escape_participant_names():
    from datetime import datetime

    from spinebench.leaderboards.figures import build
    from spinebench.leaderboards.services import Row, SubmissionRef

    rows = [
        Row(
            rank=i + 1,
            participant=name,
            submission=SubmissionRef(pk=i + 1, is_baseline=False, created=datetime(2026, 1, 1)),
            values=[float(i)],
        )
        for i, name in enumerate(["<script>alert(1)</script>", 'x" onload="y'])
    ]
    statistics_json = {
        "metric": "smape",
        "direction": "lower",
        "samples": 10,
        "entries": {"1": {"ci_low": 0.0, "ci_high": 0.5}, "2": {"ci_low": 0.5, "ci_high": 1.5}},
        "rank_counts": {"1": {"1": 10}, "2": {"2": 10}},
        "significance": {
            "alpha": 0.05,
            "submissions": [1, 2],
            "p": [[None, 0.01], [1.0, None]],
            "better": [[False, True], [False, False]],
            "wins": [1, 0],
        },
    }
    figures = build(statistics=statistics_json, rows=rows, page_rows=rows)
    drawn = figures.rank_plot["svg"] + figures.significance["svg"] + "".join(r.bar for r in figures.intervals)
    assert "<script>" not in drawn and 'x" onload' not in drawn and "&lt;script&gt;" in drawn
    assert "style=" not in drawn
    assert figures.significance["rows"][0]["better_than"] == ['#2 x" onload="y']  # escaped by the template


def bulk_entries(phase, count: int) -> None:
    """`count` scored submissions straight through the ORM (12 case values each, entry i worse than entry i-1)."""
    from django.contrib.auth import get_user_model

    from spinebench.submissions.models import Submission

    User = get_user_model()  # no password hashing: a hundred accounts in milliseconds
    users = User.objects.bulk_create([User(username=f"bulk-{phase.pk}-{i}") for i in range(count)])
    submissions = Submission.objects.bulk_create(
        [Submission(phase=phase, creator=user, status="succeeded") for user in users]
    )
    Evaluation.objects.bulk_create(
        [
            Evaluation(
                submission=submission,
                metrics={
                    "case": {case: {"smape": float(i + c)} for c, case in enumerate(sorted(ANGLES))},
                    "aggregates": {"smape": float(i) + 5.5},
                },
            )
            for i, submission in enumerate(submissions)
        ]
    )


def test_a_phase_ranked_before_snapshots_gets_one_on_first_read(client, eager_tasks):
    phase = twelve_case_phase()
    bulk_entries(phase, 3)
    assert not LeaderboardSnapshot.objects.filter(phase=phase).exists()
    page = client.get(phase.get_absolute_url()).content.decode()
    snapshot = LeaderboardSnapshot.objects.get(phase=phase)
    assert [row["rank"] for row in snapshot.rows] == [1, 2, 3] and snapshot.rows[0]["participant"] in page


def test_long_leaderboard_is_paginated(client, eager_tasks, django_capture_on_commit_callbacks):
    phase = twelve_case_phase()
    bulk_entries(phase, 105)
    with django_capture_on_commit_callbacks(execute=True):
        rerank_phase(phase.pk)
    first = client.get(phase.get_absolute_url()).content.decode()
    second = client.get(phase.get_absolute_url() + "?page=2").content.decode()
    assert "Page 1 of 2 (entries 1–100 of 105)" in first and 'rel="next"' in first
    assert first.count('class="ci-bar"') == 100 and second.count('class="ci-bar"') == 5
    assert "<td>105</td>" in second and "<td>105</td>" not in first  # the last rank
    # the rank plot and the significance map show the top 20 on every page
    assert second.count("<li>#") == 20 and 'class="rank-plot"' in second
    data = client.get(reverse("leaderboards:export-json", args=[phase.challenge.slug, phase.slug])).json()
    assert len(data["rows"]) == 105 and all(row["ci_low"] is not None for row in data["rows"])
