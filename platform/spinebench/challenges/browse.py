"""What the challenge list and a challenge's page show: the filtered list (search, task, open now, takes containers),
the state of each phase's submission window, and the baseline methods registered for a challenge's tasks. Plain
functions over querysets so the pages stay thin and the numbers are testable without a browser."""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db.models import Prefetch, Q
from django.utils import timezone

from .models import Challenge, Phase


@dataclass(frozen=True)
class ChallengeFilters:
    query: str = ""
    task: str = ""
    open_now: bool = False
    has_containers: bool = False

    @classmethod
    def from_params(cls, params) -> ChallengeFilters:
        return cls(
            query=params.get("q", "").strip()[:100],
            task=params.get("task", "").strip()[:64],
            open_now=params.get("open") == "1",
            has_containers=params.get("containers") == "1",
        )

    @property
    def active(self) -> bool:
        return bool(self.query or self.task or self.open_now or self.has_containers)


def open_phase_q(now: datetime, prefix: str = "") -> Q:
    """Phases accepting submissions at `now` (the same rule as Phase.is_open)."""
    return (Q(**{f"{prefix}opens_at__isnull": True}) | Q(**{f"{prefix}opens_at__lte": now})) & (
        Q(**{f"{prefix}closes_at__isnull": True}) | Q(**{f"{prefix}closes_at__gt": now})
    )


def browse_challenges(*, challenges, filters: ChallengeFilters, now: datetime | None = None):
    """The challenges of `challenges` (those the visitor may see: spinebench.access.visible_challenges) that match
    `filters`, each with its public phases prefetched (as `listed_phases`). A phase criterion (task, open, containers)
    must hold for one public phase."""
    now = now or timezone.now()
    if filters.query:
        challenges = challenges.filter(Q(title__icontains=filters.query) | Q(description__icontains=filters.query))
    phase_q = Q(is_public=True)
    if filters.task:
        phase_q &= Q(task=filters.task)
    if filters.open_now:
        phase_q &= open_phase_q(now)
    if filters.has_containers:
        phase_q &= Q(submission_kind=Phase.SubmissionKind.ALGORITHM)
    if filters.task or filters.open_now or filters.has_containers:
        challenges = challenges.filter(pk__in=Phase.objects.filter(phase_q).values("challenge"))
    public_phases = Phase.objects.filter(is_public=True).order_by("order", "pk")
    return challenges.prefetch_related(Prefetch("phases", queryset=public_phases, to_attr="listed_phases"))


def listed_tasks(*, challenges) -> list[str]:
    """Task ids of the public phases of `challenges` (those the visitor may see: the task filter's choices)."""
    return sorted(
        set(
            Phase.objects.filter(challenge__in=challenges, is_public=True)
            .values_list("task", flat=True)
            .distinct()
        )
    )


@dataclass(frozen=True)
class Window:
    """A phase's submission window as a page states it."""

    state: str  # "open", "upcoming" or "closed"
    opens_at: datetime | None
    closes_at: datetime | None
    now: datetime

    @property
    def label(self) -> str:
        return {"open": "open now", "upcoming": "opens later", "closed": "closed"}[self.state]

    @property
    def tone(self) -> str:
        return {"open": "success", "upcoming": "info", "closed": "secondary"}[self.state]


def phase_window(phase: Phase, *, now: datetime | None = None) -> Window:
    now = now or timezone.now()
    if phase.opens_at is not None and now < phase.opens_at:
        state = "upcoming"
    elif phase.closes_at is not None and now >= phase.closes_at:
        state = "closed"
    else:
        state = "open"
    return Window(state=state, opens_at=phase.opens_at, closes_at=phase.closes_at, now=now)


def challenge_badges(challenge: Challenge, phases, *, now: datetime | None = None) -> list[tuple[str, str]]:
    """(text, tone) labels of a challenge card: its tasks, whether a phase is open, whether it takes containers."""
    now = now or timezone.now()
    badges = [(task, "primary") for task in sorted({phase.task for phase in phases})]
    if any(phase.is_open(now) for phase in phases):
        badges.append(("open now", "success"))
    if any(phase.submission_kind == Phase.SubmissionKind.ALGORITHM for phase in phases):
        badges.append(("containers", "dark"))
    return badges


@dataclass(frozen=True)
class BaselineMethod:
    task: str
    name: str
    paper: str
    presets: tuple[str, ...]
    module: str

    @property
    def source(self) -> str:
        """The method's file in the SpineBench sources, e.g. baselines/aasce/seg4reg.py."""
        return self.module.replace(".", "/") + ".py"


@cache
def _module_constants(module: str) -> tuple[str, tuple[str, ...]]:
    """PAPER and the PRESETS names of a baseline module, read from its source without importing it (importing a
    method module imports torch: a page must not pay that)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return "", ()
    with open(spec.origin, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=spec.origin)
    paper = ""
    presets: tuple[str, ...] = ()
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        if name == "PAPER" and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            paper = node.value.value
        elif name == "PRESETS" and isinstance(node.value, ast.Dict):
            presets = tuple(key.value for key in node.value.keys
                            if isinstance(key, ast.Constant) and isinstance(key.value, str))
    return paper, presets


def baseline_methods(tasks) -> list[BaselineMethod]:
    """The registered baseline methods (baselines.registry) of the given task ids, in registry order."""
    from baselines.registry import METHODS

    found = []
    for task in sorted(set(tasks)):
        for name, spec in METHODS.get(task, {}).items():
            paper, presets = _module_constants(spec.module)
            found.append(BaselineMethod(task=task, name=name, paper=paper, presets=presets, module=spec.module))
    return found
