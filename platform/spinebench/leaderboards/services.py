"""Re-ranking one phase into a leaderboard snapshot, and reading the latest snapshot (the pages, the API and the
exports). Reading never ranks, never computes statistics and never loads per-case metrics or curves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any

from django.db import transaction
from django.db.models import F
from django.urls import reverse

from spinebench.challenges.models import Phase
from spinebench.submissions.models import Evaluation, PrivateEvaluation
from spinebench.submissions.status import Status

from . import ranking
from .models import LeaderboardSnapshot

LIVE = LeaderboardSnapshot.Kind.LIVE
#: The statistics task waits this long after its re-rank, so that a burst of scorings (each writing a snapshot)
#: computes the statistics of its last snapshot only: the others are found superseded. Eager mode runs at once.
STATISTICS_DELAY_SECONDS = 5


def live_kind(phase: Phase) -> str:
    """The kind of the phase's live leaderboard snapshots: the public part of a split phase, else the whole set."""
    return LeaderboardSnapshot.Kind.PUBLIC if phase.is_split else LIVE


def part_evaluations(kind: str) -> type[Evaluation] | type[PrivateEvaluation]:
    """Where a snapshot kind's scores are: the private part's own rows, else the submissions' current evaluation."""
    return PrivateEvaluation if kind == LeaderboardSnapshot.Kind.PRIVATE else Evaluation


def _published(kind: str, phase: Phase, **filters):
    """Evaluations of `kind` of the phase's succeeded, published submissions (a private part is published with its
    public one)."""
    published = "submission__evaluation__published" if kind == LeaderboardSnapshot.Kind.PRIVATE else "published"
    return part_evaluations(kind).objects.filter(
        submission__phase=phase, submission__status=Status.SUCCEEDED, **{published: True}, **filters
    )


def _published_results(phase: Phase, kind: str = LIVE):
    """The published evaluations of succeeded submissions, with only what a row needs (aggregates, not the case
    metrics or curves: those are large and a leaderboard never shows them)."""
    return (
        # A degenerate baseline (constant, mostly fallbacks, or below the trivial reference) is shown greyed below the
        # leaderboard but never ranked as the method, nor counted in its statistics.
        _published(
            kind,
            phase,
            submission__degenerate_reason="",
            submission__hidden_from_leaderboard=False,  # taken off by an organizer (submissions.moderation)
        )
        .annotate(aggregate_values=F("metrics__aggregates"))
        .values(
            "submission_id",
            "aggregate_values",
            "submission__created",
            "submission__creator_id",
            "submission__creator__username",
            "submission__is_baseline",
            "submission__baseline_method",
            "submission__chosen",
            "submission__method_name",
            "submission__paper_url",
            "submission__code_url",
            "submission__team_id",
            "submission__team__name",
        )
    )


def _participant(result: dict) -> tuple[str, str]:
    """(leaderboard key, display name), as Submission.participant_key / participant_name: a team is one entry."""
    if result["submission__is_baseline"]:
        method = result["submission__baseline_method"]
        return f"baseline:{method}", method
    if result["submission__team_id"]:
        return f"team:{result['submission__team_id']}", result["submission__team__name"]
    creator = result["submission__creator_id"]
    return f"user:{creator}", result["submission__creator__username"] or "(deleted user)"


#: Starts the background computation of a snapshot's statistics; the app's ready() registers the Celery task here, so
#: this service never imports the task layer above it.
_statistics_starter: Callable[[int], object] | None = None


def register_statistics_starter(start: Callable[[int], object]) -> None:
    global _statistics_starter
    _statistics_starter = start


def _start_statistics(snapshot_pk: int) -> None:
    if _statistics_starter is None:
        raise RuntimeError("no statistics task registered (spinebench.leaderboards is not ready)")
    _statistics_starter(snapshot_pk)


def rerank_phase(phase_pk: int) -> LeaderboardSnapshot:
    """Rank one phase's published results, store each evaluation's rank and write a snapshot of the leaderboard;
    its statistics are computed afterwards by a background task (dispatched once this transaction commits). A split
    phase gets two snapshots, its public part (the live leaderboard, returned) and its private part (the final
    one). The phase row lock serialises concurrent re-rankings of the same phase."""
    with transaction.atomic():
        phase = Phase.objects.select_for_update().get(pk=phase_pk)
        if phase.is_split:
            _rank_part(phase, LeaderboardSnapshot.Kind.PRIVATE)
        return _rank_part(phase, live_kind(phase))


def _rank_part(phase: Phase, kind: str) -> LeaderboardSnapshot:
    metrics = phase.leaderboard_metrics
    results = {result["submission_id"]: result for result in _published_results(phase, kind)}
    entries = [
        ranking.Entry(
            key=_participant(result)[0],
            submission_pk=pk,
            created=result["submission__created"],
            metrics=result["aggregate_values"] or {},
            chosen=result["submission__chosen"],
        )
        for pk, result in results.items()
    ]
    ranked = ranking.leaderboard(
        entries,
        metrics=metrics,
        directions={key: phase.direction(key) for key in metrics},
        method=phase.ranking_method,
        policy=phase.selection,
    )
    new_rank = {entry.submission_pk: rank for rank, entry in ranked}
    model = part_evaluations(kind)
    changed: list[Any] = []  # rows of `model`, whichever part it is
    for evaluation in model.objects.filter(submission__phase=phase).only("pk", "rank", "submission_id"):
        rank = new_rank.get(evaluation.submission_id)
        if evaluation.rank != rank:
            evaluation.rank = rank
            changed.append(evaluation)
    model.objects.bulk_update(changed, ["rank"])
    with_curves = set(
        model.objects.filter(submission_id__in=new_rank).exclude(curves={}).values_list("submission_id", flat=True)
    )
    snapshot = LeaderboardSnapshot.objects.create(
        phase=phase,
        kind=kind,
        evaluation_version=phase.evaluation_version,
        unranked=_unranked_baselines(phase, metrics, kind),
        ranking_method=phase.ranking_method,
        metrics=[{"key": key, "direction": phase.direction(key)} for key in metrics],
        rows=[
            _row_record(rank, entry, results[entry.submission_pk], metrics, with_curves) for rank, entry in ranked
        ],
        statistics_status=(
            LeaderboardSnapshot.StatisticsStatus.PENDING if ranked else LeaderboardSnapshot.StatisticsStatus.READY
        ),
    )
    if ranked:
        transaction.on_commit(lambda: _start_statistics(snapshot.pk))
    return snapshot


def _row_record(rank: int, entry: ranking.Entry, result: dict, metrics: list[str], with_curves: set) -> dict:
    return {
        "rank": rank,
        "submission": entry.submission_pk,
        "participant": _participant(result)[1],
        "user": None if result["submission__is_baseline"] else result["submission__creator_id"],
        "team": result["submission__team_id"],
        "is_baseline": result["submission__is_baseline"],
        "method": result["submission__baseline_method"] if result["submission__is_baseline"] else "",
        "created": entry.created.isoformat(),
        "values": {key: entry.metrics.get(key) for key in metrics},
        "has_curves": entry.submission_pk in with_curves,
        "method_name": result["submission__method_name"],
        "paper_url": result["submission__paper_url"],
        "code_url": result["submission__code_url"],
    }


#: What a read loads of a snapshot row; its large JSON (rows, statistics) comes from `_content`, decoded once per
#: process.
_HEADER = ("pk", "phase_id", "created", "evaluation_version", "kind", "ranking_method", "metrics", "statistics_status")


def latest_snapshot(phase: Phase, kind: str | None = None) -> LeaderboardSnapshot:
    """The phase's newest snapshot of `kind` (default: its live leaderboard; rows and statistics deferred). A phase
    ranked before snapshots existed gets its first one here, once. The private part of a split phase is its final
    leaderboard: callers ask spinebench.access.can_see_private_part first."""
    kind = kind or live_kind(phase)
    snapshot = (
        LeaderboardSnapshot.objects.filter(phase=phase, kind=kind).only(*_HEADER).order_by("-created", "-pk").first()
    )
    if snapshot is not None:
        return snapshot
    rerank_phase(phase.pk)
    return LeaderboardSnapshot.objects.filter(phase=phase, kind=kind).only(*_HEADER).order_by("-created", "-pk")[0]


@lru_cache(maxsize=64)
def _content(snapshot_pk: int, version: str, field: str):
    """A snapshot's decoded `rows` or `statistics`. Rows never change and statistics are written once (with the
    status, which `version` includes, as does the creation time, so a reused primary key cannot hit an old entry):
    a process decodes each at most once. Callers must not modify what they get."""
    return LeaderboardSnapshot.objects.values_list(field, flat=True).get(pk=snapshot_pk)


def _version(snapshot: LeaderboardSnapshot) -> str:
    return f"{snapshot.created.isoformat()}/{snapshot.statistics_status}"


def statistics_snapshot(phase: Phase, latest: LeaderboardSnapshot) -> LeaderboardSnapshot | None:
    """The newest snapshot whose statistics are ready: the latest one, or while its statistics are being computed,
    the one before (the page says which time they are from)."""
    if latest.statistics_status == LeaderboardSnapshot.StatisticsStatus.READY:
        return latest
    return (
        LeaderboardSnapshot.objects.filter(
            phase=phase,
            kind=latest.kind,
            statistics_status=LeaderboardSnapshot.StatisticsStatus.READY,
            evaluation_version=latest.evaluation_version,
        )
        .only(*_HEADER)
        .order_by("-created", "-pk")
        .first()
    )


@dataclass(frozen=True)
class SubmissionRef:
    """What a leaderboard row says about its submission (enough for links and badges, without loading it)."""

    pk: int
    is_baseline: bool
    created: datetime

    def get_absolute_url(self) -> str:
        return reverse("submissions:detail", kwargs={"pk": self.pk})


@dataclass(frozen=True)
class Row:
    rank: int
    participant: str
    submission: SubmissionRef
    values: list[float | None]
    method: str = ""
    has_curves: bool = False
    method_name: str = ""
    paper_url: str = ""
    code_url: str = ""
    team: int | None = None  # the entry's team (spinebench.teams), whose page lists its members
    user: int | None = None  # the submitter (None: a baseline)

    def team_url(self) -> str:
        return reverse("teams:detail", kwargs={"pk": self.team}) if self.team else ""


def snapshot_rows(snapshot: LeaderboardSnapshot) -> list[Row]:
    return list(_rows(snapshot.pk, snapshot.created.isoformat(), tuple(m["key"] for m in snapshot.metrics)))


@lru_cache(maxsize=64)
def _rows(snapshot_pk: int, created: str, keys: tuple[str, ...]) -> tuple[Row, ...]:
    return tuple(
        Row(
            rank=record["rank"],
            participant=record["participant"],
            submission=SubmissionRef(
                pk=record["submission"],
                is_baseline=record["is_baseline"],
                created=datetime.fromisoformat(record["created"]),
            ),
            values=[record["values"].get(key) for key in keys],
            method=record.get("method", ""),
            has_curves=record.get("has_curves", False),
            method_name=record.get("method_name", ""),
            paper_url=record.get("paper_url", ""),
            code_url=record.get("code_url", ""),
            team=record.get("team"),
            user=record.get("user"),
        )
        for record in _content(snapshot_pk, created, "rows")
    )


def leaderboard_rows(phase: Phase) -> list[Row]:
    return snapshot_rows(latest_snapshot(phase))


@dataclass
class Leaderboard:
    """Everything a leaderboard page or export shows, read from snapshots."""

    phase: Phase
    snapshot: LeaderboardSnapshot
    statistics_from: LeaderboardSnapshot | None

    @cached_property
    def rows(self) -> list[Row]:
        return snapshot_rows(self.snapshot)

    @property
    def statistics(self) -> dict:
        if self.statistics_from is None:
            return {}
        return _content(self.statistics_from.pk, _version(self.statistics_from), "statistics")

    @property
    def statistics_pending(self) -> bool:
        return self.snapshot.statistics_status == LeaderboardSnapshot.StatisticsStatus.PENDING

    def entry_statistics(self, submission_pk: int) -> dict:
        return self.statistics.get("entries", {}).get(str(submission_pk), {})


def read_leaderboard(phase: Phase, kind: str | None = None) -> Leaderboard:
    """The live leaderboard, or with `kind` PRIVATE a split phase's final one (only for who may see it)."""
    snapshot = latest_snapshot(phase, kind)
    return Leaderboard(phase=phase, snapshot=snapshot, statistics_from=statistics_snapshot(phase, snapshot))


def export_records(phase: Phase, board: Leaderboard | None = None) -> list[dict]:
    """Rows as plain dicts (CSV and JSON exports, the API), with the ranking metric's confidence interval when the
    statistics are ready. Built once per process and snapshot (callers must not modify them)."""
    board = board or read_leaderboard(phase)
    source = board.statistics_from
    return _records(
        board.snapshot.pk,
        board.snapshot.created.isoformat(),
        tuple(m["key"] for m in board.snapshot.metrics),
        source.pk if source else None,
        _version(source) if source else "",
    )


@lru_cache(maxsize=64)
def _records(snapshot_pk: int, created: str, keys: tuple[str, ...], statistics_pk, statistics_version: str) -> list:
    entries = _content(statistics_pk, statistics_version, "statistics").get("entries", {}) if statistics_pk else {}
    records = []
    for row in _rows(snapshot_pk, created, keys):
        interval = entries.get(str(row.submission.pk), {})
        records.append(
            {
                "rank": row.rank,
                "participant": row.participant,
                "is_baseline": row.submission.is_baseline,
                "team": row.team,
                "submission": row.submission.pk,
                "created": row.submission.created.isoformat(),
                "method_name": row.method_name,
                "paper_url": row.paper_url,
                "code_url": row.code_url,
                **dict(zip(keys, row.values)),
                "ci_low": interval.get("ci_low"),
                "ci_high": interval.get("ci_high"),
            }
        )
    return records


def _unranked_baselines(phase: Phase, metrics: list[str], kind: str = LIVE) -> list[dict]:
    """Scored baselines left out of the ranking (Submission.degenerate_reason), with what the page shows of them."""
    found = (
        _published(kind, phase, submission__is_baseline=True)
        .exclude(submission__degenerate_reason="")
        .annotate(aggregate_values=F("metrics__aggregates"))
        .values(
            "submission_id",
            "aggregate_values",
            "submission__baseline_method",
            "submission__degenerate_reason",
            "submission__fallback_share",
        )
        .order_by("submission__baseline_method", "-submission__created")
    )
    return [
        {
            "submission": result["submission_id"],
            "method": result["submission__baseline_method"],
            "reason": result["submission__degenerate_reason"],
            "fallback_share": result["submission__fallback_share"],
            "values": {key: (result["aggregate_values"] or {}).get(key) for key in metrics},
        }
        for result in found
    ]


def unranked_baselines(snapshot: LeaderboardSnapshot) -> list[dict]:
    """A snapshot's unranked baselines (shown greyed, with the reason, below the leaderboard; never in its
    statistics), decoded once per process like its rows."""
    return _content(snapshot.pk, _version(snapshot), "unranked")
