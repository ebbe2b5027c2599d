"""The benchmark tables' fallback column: a degenerate run is flagged and does not count as beating the mean."""

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import baselines_aasce  # noqa: E402
import ctxr_common  # noqa: E402

from baselines import api  # noqa: E402
from baselines.report import assess  # noqa: E402


def _run(method: str, cases: dict[str, str], angles: dict[str, list[float]]):
    return assess(task="aasce-cobb", method=method, cases=cases, predictions={c: {"angles": a} for c, a in angles.items()})


def test_aasce_table_has_a_fallback_column_and_degenerate_runs_do_not_beat_the_mean():
    good = _run("seg4reg", {"a": "method", "b": "zeros"}, {"a": [1, 2, 3], "b": [0, 0, 0]})
    fallback = _run("top-down", {"a": "training-mean", "b": "training-mean"}, {"a": [9, 9, 9], "b": [9, 9, 9]})
    common = {"mae_pt": 1.0, "mae_mt": 1.0, "mae_tl": 1.0, "train_s": 1.0, "predict_s": 1.0, "paper": None, "note": ""}
    rows = [
        {"method": "reference: training mean", "smape": 40.0, **common},
        {"method": "seg4reg", "smape": 30.0, **common, "report": good},
        {"method": "top-down", "smape": 35.0, **common, "report": fallback},
    ]
    args = SimpleNamespace(reuse=False, preset="tiny", seed=0, small=True)
    text = baselines_aasce.render(rows, args=args, n_train=2, n_test=2, device="cpu", total_s=60.0)
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert "| fallback |" in header
    lines = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert "| 1/2 (zeros 1) |" in lines["| seg4reg"]
    assert "| 2/2 (training-mean 2), degenerate (constant) |" in lines["| top-down"]
    assert len(header.split("|")) == len(lines["| top-down"].split("|"))
    assert "1 of 2 methods that ran beat the training-mean row without being degenerate (not: top-down)." in text


def test_ctxr_fallback_cell():
    assert ctxr_common.fallback_cell(None) == "n/a"
    assert ctxr_common.fallback_cell(_run("m", {"a": "method", "b": "method"}, {"a": [1, 2, 3], "b": [1, 2, 4]})) == "0/2"


def test_rotated_proposals_row_without_the_corner_fallback(aasce_train, aasce_test, tmp_path):
    checkpoint = api.train("aasce-cobb", "rotated-proposals", preset="tiny", data_dir=aasce_train,
                           out=tmp_path / "rotated-proposals.pt", device="cpu", progress=False)
    row = baselines_aasce.without_corner_fallback(checkpoint, test_dir=aasce_test, work=tmp_path, device="cpu",
                                                  train_s=1.0)
    variant = torch.load(tmp_path / "rotated-proposals-no-corner-fallback.pt", weights_only=True)
    assert math.isinf(variant["config"]["corner_tolerance"])
    assert not math.isinf(torch.load(checkpoint, weights_only=True)["config"]["corner_tolerance"])  # original kept
    assert row["variant"] and row["method"] == "rotated-proposals, corner fallback off"
    assert math.isfinite(row["smape"]) and len(row["report"].cases) == 6
