"""The fuzz tests' shared budget and checks. Every fuzz test runs a fixed number of examples (in its test id), with
no deadline flakiness (a per-example deadline well above the slowest legitimate case) and no example database, so
CI time stays small and predictable. Peak memory is checked with the process's maximum resident set size: a parser
that trusted a declared size (a zip bomb, a NIfTI header claiming 512 M voxels) shows up as a jump."""

from __future__ import annotations

import os
import resource
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings

EXAMPLES = 150
MEMORY_GROWTH_LIMIT_MB = 256


def fuzz_settings(examples: int = EXAMPLES):
    return settings(
        # CI draws the same examples every run (a submission lands or not on its own code, not on a draw); a
        # developer's run draws new ones each time, and what they find becomes a fixed regression example.
        max_examples=examples, deadline=5000, database=None, derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@contextmanager
def bounded_memory(limit_mb: float = MEMORY_GROWTH_LIMIT_MB):
    before = peak_rss_mb()
    yield
    grown = peak_rss_mb() - before
    assert grown < limit_mb, f"peak memory grew by {grown:.0f} MiB while fuzzing (limit {limit_mb} MiB)"


def tree(folder: Path) -> set[str]:
    """Every path below `folder` (links included, never followed)."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}
