"""Hooks installed only in worker processes started through worker_entry.py (never in the platform's code).

SPINEBENCH_TEST_PAUSE="module:function=/path/to/file[;...]" wraps each named module-level function so that, while
the file exists, a call waits inside it (after first writing `<file>.reached`, so the test knows the worker got
there). Wrapping `spinebench.submissions.tasks:score_predictions` holds scoring inside its transaction, with the
row lock taken: the moment a fault test kills the worker."""

from __future__ import annotations

import functools
import importlib
import os
import time
from pathlib import Path

ENV = "SPINEBENCH_TEST_PAUSE"


def parse(spec: str) -> list[tuple[str, str, Path]]:
    points = []
    for item in filter(None, spec.split(";")):
        target, _, file = item.partition("=")
        module, _, function = target.partition(":")
        if not (module and function and file):
            raise ValueError(f"{ENV}: expected module:function=file, got {item!r}")
        points.append((module, function, Path(file)))
    return points


def pause_while_file_exists(module_name: str, function_name: str, file: Path) -> None:
    module = importlib.import_module(module_name)
    original = getattr(module, function_name)
    if getattr(original, "__wrapped_by_test_pause__", False):
        return

    @functools.wraps(original)
    def paused(*args, **kwargs):
        if file.exists():
            Path(f"{file}.reached").write_text(str(os.getpid()))
            while file.exists():
                time.sleep(0.05)
        return original(*args, **kwargs)

    paused.__wrapped_by_test_pause__ = True
    setattr(module, function_name, paused)


def install_from_environment(**_) -> None:
    for module, function, file in parse(os.environ.get(ENV, "")):
        pause_while_file_exists(module, function, file)
