"""SpineBench phantoms: generators of realistic, learnable data with exact ground truth for every task, real-anatomy
case sets built from a registry package (`phantoms.real`), and importers for the public dataset layouts
(`phantoms.importers`). Pure Python (numpy, scipy, SimpleITK, Pillow); no Django.

    phantoms.generate("aasce-cobb", out="data/aasce", cases=100, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.layout import SPLITS

DOMAINS = SPLITS
LAYOUTS = ("spinebench", "spineweb16", "verse")


def _generator(module: str) -> Callable[..., Path]:
    def run(**kwargs: Any) -> Path:
        from importlib import import_module

        written: Path = import_module(f"phantoms.{module}").generate(**kwargs)
        return written

    run.__name__ = f"generate_{module}"
    return run


#: task id -> generator taking (out, cases, seed, domain, layout, small, progress, workers) keyword arguments.
GENERATORS: dict[str, Callable[..., Path]] = {
    "aasce-cobb": _generator("aasce"),
    "vertebra-labelling-xr": _generator("labelling_xr"),
    "fracture-ct": _generator("fracture"),
    "metastatic-body-ct": _generator("metastatic"),
    "lumbosacral-ct": _generator("lumbosacral"),
}
#: which extra layouts each generator can write besides the SpineBench one.
EXTRA_LAYOUTS = {"aasce-cobb": ("spineweb16",), "fracture-ct": ("verse",)}
#: task-specific keyword options of `generate`, by task.
TASK_OPTIONS = {"fracture-ct": ("fracture_free",)}


def generate(
    task_id: str,
    *,
    out: str | Path,
    cases: int,
    seed: int,
    domain: str = "train",
    layout: str = "spinebench",
    small: bool = False,
    progress: bool = True,
    workers: int = 1,
    **options: Any,
) -> Path:
    """Write `cases` generated cases of `task_id` into the dataset folder `out` and return it.

    domain "train" gives a train split; "test" a test split with the task's shifted domain (and groups for
    metastatic-body-ct and lumbosacral-ct). `layout` "spineweb16" (aasce-cobb) or "verse" (fracture-ct) writes the
    public dataset layout instead, for the importers. `small` makes reduced-size images for fast tests. `workers` > 1
    writes cases in that many processes (same files). `options` are task-specific (TASK_OPTIONS): fracture-ct takes
    `fracture_free`, the fraction of patients made fracture-free (default 0). Output is byte-identical for equal
    arguments."""
    if task_id not in GENERATORS:
        raise ValueError(f"unknown task {task_id!r}; generators exist for {sorted(GENERATORS)}")
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if layout != "spinebench" and layout not in EXTRA_LAYOUTS.get(task_id, ()):
        allowed = ("spinebench", *EXTRA_LAYOUTS.get(task_id, ()))
        raise ValueError(f"layout {layout!r} is not available for {task_id}; expected one of {allowed}")
    if int(cases) < 1:
        raise ValueError(f"cases must be at least 1, got {cases}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    unknown = set(options) - set(TASK_OPTIONS.get(task_id, ()))
    if unknown:
        raise ValueError(f"{task_id} takes no option(s) {sorted(unknown)}; it takes {TASK_OPTIONS.get(task_id, ())}")
    return GENERATORS[task_id](out=Path(out), cases=int(cases), seed=int(seed), domain=domain, layout=layout,
                               small=bool(small), progress=progress, workers=int(workers), **options)
