"""Train and run any baseline by task and method name.

- ``train(task_id, method, *, preset, data_dir, out, device="auto", progress=True, overrides=None) -> Path``:
  resolves the method (``baselines.registry``), builds its config from the preset plus the method variant's
  overrides plus ``overrides``, trains on the dataset folder and saves a checkpoint file
  ``{"task", "method", "preset", "config", "state", "losses", ...}`` (everything the module's ``train`` returned;
  numpy values are stored as tensors so the file loads with ``torch.load(weights_only=True)``).
- ``predict(task_id, method, *, checkpoint, data_dir, out, device="auto", progress=True) -> Path``: loads the
  checkpoint (which must be for the same task and method), rebuilds the config it was trained with, predicts every
  case of ``data_dir`` from ``inputs/`` only and writes the predictions with ``evaluators.formats.write_predictions``
  (a per-case folder, or one CSV when ``out`` ends in ``.csv`` for the CSV tasks). Beside them, at
  ``baselines.report.report_path(path)``, it writes the run report (``baselines.report``): per case whether the
  method's own output or a fallback was used, and whether the run is degenerate.
- ``resolve_device("auto"|"cpu"|"cuda"|...)`` (``baselines.nn.training``, the one device rule of every method):
  "auto" is CUDA when available, else CPU. Method modules train under
  ``torch.autocast`` (mixed precision) on CUDA via ``baselines.nn.training.autocast``.
- ``build_config(module, preset, overrides)`` (values checked by ``baselines.presets.validate_config``) and
``config_from_dict(cls, data)`` (nested dataclasses rebuilt).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import torch

from baselines import report
from baselines.nn.training import resolve_device
from baselines.presets import validate_config
from baselines.registry import get_method
from evaluators.formats import write_predictions

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or for another task or method."""


def config_from_dict(cls, data: dict):
    """Rebuild a (possibly nested) config dataclass from ``dataclasses.asdict`` output."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise CheckpointError(f"{cls.__qualname__}: unknown setting(s) {', '.join(unknown)}")
    values = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        values[name] = value
    return cls(**values)


def build_config(module, preset: str, overrides: dict | None = None):
    if preset not in module.PRESETS:
        raise ValueError(f"{module.__name__} has no preset {preset!r}; presets: {', '.join(module.PRESETS)}")
    base = module.PRESETS[preset]
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{module.__name__}.Config has no setting(s) {', '.join(unknown)}")
    config = dataclasses.replace(base, **overrides)
    validate_config(config, where=f"{module.__name__}.Config")  # a wrong type or size fails here, not mid-training
    return config


def _storable(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_storable(item) for item in value)
    return value


def train(
    task_id: str,
    method: str,
    *,
    preset: str,
    data_dir,
    out,
    device: str | torch.device = "auto",
    progress: bool = True,
    overrides: dict | None = None,
) -> Path:
    spec = get_method(task_id, method)
    module = spec.load()
    config = build_config(module, preset, {**spec.overrides, **(overrides or {})})
    result = module.train(data_dir=Path(data_dir), config=config, device=resolve_device(device), progress=progress)
    if "state" not in result or "losses" not in result:
        raise TypeError(f"{spec.module}.train must return a dict with 'state' and 'losses'")
    checkpoint = _storable(
        {
            **result,
            "format": CHECKPOINT_FORMAT,
            "task": task_id,
            "method": method,
            "preset": preset,
            "config": dataclasses.asdict(config),
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    return out


def load_checkpoint(path, *, task_id: str | None = None, method: str | None = None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable baseline checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a baseline checkpoint (format {CHECKPOINT_FORMAT} expected)")
    for key, expected in (("task", task_id), ("method", method)):
        if expected is not None and checkpoint.get(key) != expected:
            raise CheckpointError(f"{path}: checkpoint is for {key} {checkpoint.get(key)!r}, not {expected!r}")
    return checkpoint


def stale_checkpoint(path, *, task_id: str, method: str, preset: str) -> str | None:
    """Why the checkpoint at ``path`` cannot serve ``method``'s ``preset`` with the code as it is now (unreadable,
    another task, method or preset, or settings the method's ``Config`` no longer has: a checkpoint written by an
    earlier version), or None when it can."""
    try:
        stored = load_checkpoint(path, task_id=task_id, method=method)
        if stored.get("preset") != preset:
            raise CheckpointError(f"{path}: checkpoint has preset {stored.get('preset')!r}, not {preset!r}")
        config_from_dict(get_method(task_id, method).load().Config, stored["config"])
    except (CheckpointError, KeyError, TypeError) as error:
        return str(error)
    return None


def predict(
    task_id: str,
    method: str,
    *,
    checkpoint,
    data_dir,
    out,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> Path:
    spec = get_method(task_id, method)
    module = spec.load()
    stored = load_checkpoint(checkpoint, task_id=task_id, method=method)
    config = config_from_dict(module.Config, stored["config"])
    with report.recording() as fallbacks:
        predictions = module.predict(
            checkpoint=stored, data_dir=Path(data_dir), config=config, device=resolve_device(device), progress=progress
        )
    cases = {str(case_id): fallbacks.get(str(case_id), report.METHOD) for case_id in predictions}
    run = report.assess(
        task=task_id, method=method, cases=cases, predictions={str(k): v for k, v in predictions.items()}
    )
    path = write_predictions(task_id, predictions, Path(out))
    report.write_report(run, report.report_path(path))
    return path
