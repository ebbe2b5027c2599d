"""Every baseline method, by task: ``METHODS[task_id][method_name] -> MethodSpec(module, overrides)``.

The family packages (``baselines/<family>/__init__.py``) list their methods as ``{name: (module_path, overrides)}``;
this module collects them under the task each family solves. ``MethodSpec.load()`` imports the method module (lazily,
so listing methods never imports torch models) and checks it follows the contract in ``baselines/__init__.py``.
``get_method(task_id, method)`` raises ``UnknownMethodError`` naming what exists.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

#: family package -> the task id its methods solve (evaluators.tasks).
FAMILY_TASKS = {
    "aasce": "aasce-cobb",
    "fracture": "fracture-ct",
    "metastatic": "metastatic-body-ct",
    "labelling": "vertebra-labelling-xr",
    "lumbosacral": "lumbosacral-ct",
}
CONTRACT = ("TASK", "PAPER", "Config", "PRESETS", "train", "predict")


class UnknownMethodError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class MethodSpec:
    module: str
    overrides: dict = field(default_factory=dict)
    task: str = ""
    name: str = ""

    def load(self) -> ModuleType:
        module = importlib.import_module(self.module)
        missing = [attribute for attribute in CONTRACT if not hasattr(module, attribute)]
        if missing:
            raise TypeError(f"{self.module} does not follow the baseline contract: missing {', '.join(missing)}")
        if self.task and module.TASK != self.task:
            raise TypeError(f"{self.module}.TASK is {module.TASK!r} but it is registered for {self.task!r}")
        return module


def _collect() -> dict[str, dict[str, MethodSpec]]:
    methods: dict[str, dict[str, MethodSpec]] = {}
    for family, task_id in FAMILY_TASKS.items():
        package = importlib.import_module(f"baselines.{family}")
        for name, (module, overrides) in package.METHODS.items():
            methods.setdefault(task_id, {})[name] = MethodSpec(module, dict(overrides), task_id, name)
    return methods


METHODS: dict[str, dict[str, MethodSpec]] = _collect()


def get_method(task_id: str, method: str) -> MethodSpec:
    if task_id not in METHODS:
        raise UnknownMethodError(
            f"no baselines for task {task_id!r}; tasks with baselines: {', '.join(sorted(METHODS))}"
        )
    if method not in METHODS[task_id]:
        known = ", ".join(sorted(METHODS[task_id]))
        raise UnknownMethodError(f"task {task_id!r} has no baseline method {method!r}; available: {known}")
    return METHODS[task_id][method]
