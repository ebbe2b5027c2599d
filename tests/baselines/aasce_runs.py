"""Shared checks for the AASCE method tests (methods 5-9): tiny training through ``baselines.api`` (so the
checkpoint must survive ``torch.load(weights_only=True)``), then prediction on the test-domain phantoms scored by the
task's evaluator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from baselines import api
from evaluators.tasks import get_task


def train_and_predict(method: str, *, train_dir, test_dir, tmp_path, overrides=None) -> tuple[dict, pd.DataFrame, dict]:
    checkpoint = api.train("aasce-cobb", method, preset="tiny", data_dir=train_dir, out=tmp_path / "model.pt",
                           device="cpu", progress=False, overrides=overrides)
    stored = api.load_checkpoint(checkpoint, task_id="aasce-cobb", method=method)
    predictions = api.predict("aasce-cobb", method, checkpoint=checkpoint, data_dir=test_dir,
                              out=tmp_path / "predictions.csv", device="cpu", progress=False)
    table = pd.read_csv(predictions, dtype={"case_id": str})
    scores = get_task("aasce-cobb").evaluate(predictions=predictions, ground_truth=test_dir)
    return stored, table, scores


def assert_loss_falls(losses, *, window: int = 3) -> None:
    losses = np.asarray([float(value) for value in losses])
    assert len(losses) >= 2 * window, f"too few training steps recorded: {len(losses)}"
    assert np.all(np.isfinite(losses))
    assert losses[-window:].mean() < losses[:window].mean(), f"loss did not fall: {losses.round(4).tolist()}"


def assert_valid_angles(table: pd.DataFrame, test_dir, scores: dict) -> None:
    ids = sorted(case["id"] for case in json.loads((test_dir / "dataset.json").read_text())["cases"])
    assert sorted(table["case_id"]) == ids
    angles = table[["pt", "mt", "tl"]].to_numpy(float)
    assert angles.shape == (len(ids), 3)
    assert np.all(np.isfinite(angles)) and np.all(angles >= 0) and np.all(angles <= 180)
    assert np.isfinite(scores["aggregates"]["smape"])
