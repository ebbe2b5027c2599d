"""Leaderboard snapshots: what a re-rank of a phase decided, frozen (ranks, aggregates, statistics; never per-case
values or curves). Ranks are also kept on each Evaluation row (the submission page shows its rank); the pages,
exports and the API read the latest snapshot so that a view never ranks, never computes statistics and never loads
per-case metrics."""

from django.db import models


class LeaderboardSnapshot(models.Model):
    class Kind(models.TextChoices):
        LIVE = "live", "live leaderboard"
        PUBLIC = "public", "public part"
        PRIVATE = "private", "private part"

    class StatisticsStatus(models.TextChoices):
        PENDING = "pending", "being computed"
        READY = "ready", "ready"
        FAILED = "failed", "failed"
        SUPERSEDED = "superseded", "skipped: a newer snapshot exists"

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="leaderboard_snapshots")
    created = models.DateTimeField(auto_now_add=True)
    evaluation_version = models.PositiveIntegerField(
        default=1, help_text="Version of the phase's evaluation the ranked results come from."
    )
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.LIVE,
        help_text="Which leaderboard: the live one, or the public / private part of a split test set.",
    )
    ranking_method = models.CharField(max_length=16, help_text="The phase's ranking method at the time.")
    metrics = models.JSONField(default=list, help_text='Columns in order: [{"key": ..., "direction": ...}].')
    rows = models.JSONField(
        default=list,
        help_text='Ranked entries: [{"rank", "submission", "participant", "user", "is_baseline", "method", "created", '
        '"values": {metric: value}, "has_curves"}] in leaderboard order.',
    )
    unranked = models.JSONField(
        default=list,
        blank=True,
        help_text="Scored baselines left out of the ranking, each {submission, method, reason, fallback_share, "
        "values}: "
        "constant or mostly-fallback runs, or runs that did not beat the task's trivial reference (shown greyed).",
    )
    statistics = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per-entry confidence intervals, rank distribution summary and significance matrix (filled by "
        "spinebench.leaderboards.tasks.compute_snapshot_statistics).",
    )
    statistics_status = models.CharField(
        max_length=16, choices=StatisticsStatus.choices, default=StatisticsStatus.PENDING, db_index=True
    )

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["phase", "kind", "-created"])]
        get_latest_by = ["created", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} leaderboard of {self.phase_id} at {self.created:%Y-%m-%d %H:%M:%S}"
