"""A phase's leaderboard over time, read from its snapshots (every re-rank writes one; none is overwritten): each
entry's rank and ranking-metric value at every snapshot, and the leaderboard as it was at a given time. Nothing is
ranked or computed here beyond regrouping what the snapshots hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from functools import lru_cache

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from spinebench.challenges.models import Phase

from .models import LeaderboardSnapshot
from .services import Leaderboard, live_kind

#: The most snapshots a history reads (the newest ones; each holds every ranked row): older ones stay stored and
#: reachable by date (`snapshot_at`).
HISTORY_SNAPSHOTS = 200


@dataclass(frozen=True)
class Point:
    time: datetime
    rank: int
    value: float | None  # the snapshot's ranking metric (its first column)
    submission: int


@dataclass
class Series:
    """One leaderboard entry (a participant, or a baseline method) across the snapshots it appears in."""

    key: str
    participant: str
    is_baseline: bool
    points: list[Point] = field(default_factory=list)

    @property
    def last(self) -> Point:
        return self.points[-1]


@dataclass(frozen=True)
class History:
    metric: str
    direction: str
    times: list[datetime]
    series: list[Series]  # best final rank first; entries gone from the latest snapshot after those still on it


def entry_key(row: dict) -> str:
    """Who a snapshot row belongs to, as the ranking groups them (services._participant)."""
    if row.get("is_baseline"):
        return f"baseline:{row.get('method', '')}"
    return f"team:{row['team']}" if row.get("team") else f"user:{row.get('user')}"


def phase_history(phase: Phase, *, limit: int = HISTORY_SNAPSHOTS, kind: str | None = None) -> History:
    """Rank and ranking-metric value per entry over the phase's snapshots of `kind` (default: its live leaderboard,
    the public part of a split phase) of its current evaluation version, oldest first (the newest `limit`
    snapshots). Built once per process and newest snapshot (a new snapshot is a new key); callers must not modify
    what they get."""
    kind = kind or live_kind(phase)
    latest = (
        LeaderboardSnapshot.objects.filter(phase=phase, kind=kind)
        .order_by("-created", "-pk")
        .values_list("pk", "evaluation_version", "created")
        .first()
    )
    if latest is None:
        metric = phase.ranking_metric
        return History(metric=metric, direction=phase.direction(metric), times=[], series=[])
    return _history(phase.pk, kind, latest[0], latest[1], latest[2].isoformat(), limit)


@lru_cache(maxsize=16)
def _history(phase_pk: int, kind: str, latest_pk: int, version: int, created: str, limit: int) -> History:
    """`created` is part of the key so that a primary key used again (a rolled-back test database) never hits an old
    entry."""
    found = list(
        LeaderboardSnapshot.objects.filter(phase_id=phase_pk, kind=kind, evaluation_version=version, pk__lte=latest_pk)
        .order_by("-created", "-pk")
        .values_list("created", "metrics", "rows")[:limit]
    )
    found.reverse()
    metric = found[-1][1][0] if found[-1][1] else {"key": "", "direction": ""}
    series: dict[str, Series] = {}
    for taken, metrics, rows in found:
        key_of_value = metrics[0]["key"] if metrics else metric["key"]
        for row in rows:
            key = entry_key(row)
            entry = series.setdefault(
                key, Series(key=key, participant=row["participant"], is_baseline=row["is_baseline"])
            )
            entry.participant = row["participant"]  # the newest name shown
            entry.points.append(
                Point(
                    time=taken, rank=row["rank"], value=row["values"].get(key_of_value), submission=row["submission"]
                )
            )
    latest_time = found[-1][0]
    ordered = sorted(series.values(), key=lambda s: (s.last.time != latest_time, s.last.rank, s.participant))
    return History(
        metric=metric["key"], direction=metric.get("direction", ""), times=[item[0] for item in found], series=ordered
    )


def snapshot_at(phase: Phase, when: datetime, kind: str | None = None) -> LeaderboardSnapshot | None:
    """The leaderboard of `kind` (default: the live one, the public part of a split phase) as it was at `when`: the
    newest snapshot written at or before it (None: the phase had no leaderboard yet)."""
    found = LeaderboardSnapshot.objects.filter(phase=phase, kind=kind or live_kind(phase), created__lte=when)
    return found.order_by("-created", "-pk").first()


def parse_moment(text: str) -> datetime:
    """`YYYY-MM-DD` (the end of that day, in the site's time zone) or an ISO date-time (naive: the site's zone).
    Raises ValueError with a message for the `at` field."""
    text = text.strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is None:
                raise ValueError
            moment = datetime.combine(day, time.max)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def leaderboard_at(phase: Phase, when: datetime, kind: str | None = None) -> Leaderboard | None:
    """The leaderboard (rows, and the statistics when that snapshot's were computed) as it was at `when`."""
    snapshot = snapshot_at(phase, when, kind)
    if snapshot is None:
        return None
    ready = snapshot.statistics_status == LeaderboardSnapshot.StatisticsStatus.READY
    return Leaderboard(phase=phase, snapshot=snapshot, statistics_from=snapshot if ready else None)
