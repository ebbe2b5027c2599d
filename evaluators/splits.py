"""Public/private splits of a test set: which cases form the public part (the live leaderboard) and which the
private one (the final leaderboard). The draw is a pure function of the case ids, the fraction and a seed, so the
platform reproduces it from the phase's stored secret seed without storing the drawn list."""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable

PUBLIC = "public"
PRIVATE = "private"


def draw_public_cases(case_ids: Iterable[str], *, fraction: float, seed: str) -> list[str]:
    """A random `fraction` of `case_ids` (rounded, at least one case and at least one left for the private part),
    sorted. The same ids, fraction and seed always give the same cases, whatever order the ids come in."""
    ordered = sorted(set(case_ids))
    if len(ordered) < 2:
        raise ValueError(f"case_ids: a split needs at least 2 cases, got {len(ordered)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: must lie strictly between 0 and 1, got {fraction}")
    if not seed:
        raise ValueError("seed: must not be empty")
    count = min(max(round(fraction * len(ordered)), 1), len(ordered) - 1)
    return sorted(random.Random(seed).sample(ordered, count))


def split_parts(case_ids: Iterable[str], *, public: Collection[str]) -> dict[str, list[str]]:
    """{"public": [...], "private": [...]} of `case_ids` (kept in their order) given the public part's ids; both
    parts must hold cases and every public id must be a case."""
    ordered = list(case_ids)
    unknown = sorted(set(public) - set(ordered))
    if unknown:
        raise ValueError(f"public: not cases of the test set: {', '.join(unknown[:5])}")
    chosen = set(public)
    parts = {PUBLIC: [c for c in ordered if c in chosen], PRIVATE: [c for c in ordered if c not in chosen]}
    for name, members in parts.items():
        if not members:
            raise ValueError(f"public: the {name} part would hold no case")
    return parts
