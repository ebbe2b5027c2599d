"""The benchmark tables' fallback column: a degenerate run is flagged and does not count as beating the mean."""

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import baselines_aasce  # noqa: E402
import ctxr_common  # noqa: E402

from baselines import api  # noqa: E402
from baselines.report import assess  # noqa: E402


def _run(method: str, cases: dict[str, str], angles: dict[str, list[float]]):
    return assess(
        task="aasce-cobb", method=method, cases=cases, predictions={c: {"angles": a} for c, a in angles.items()}
    )


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
    assert (
        ctxr_common.fallback_cell(_run("m", {"a": "method", "b": "method"}, {"a": [1, 2, 3], "b": [1, 2, 4]})) == "0/2"
    )


def test_rotated_proposals_row_with_the_box_corner_fallback(aasce_train, aasce_test, tmp_path):
    checkpoint = api.train(
        "aasce-cobb",
        "rotated-proposals",
        preset="tiny",
        data_dir=aasce_train,
        out=tmp_path / "rotated-proposals.pt",
        device="cpu",
        progress=False,
    )
    row = baselines_aasce.with_corner_fallback(
        checkpoint, test_dir=aasce_test, work=tmp_path, device="cpu", train_s=1.0
    )
    variant = torch.load(tmp_path / "rotated-proposals-box-corner-fallback.pt", weights_only=True)
    assert variant["config"]["corner_tolerance"] == 0.25
    # the method's own setting (every corner the landmark FCN's) stays in the original checkpoint
    assert math.isinf(torch.load(checkpoint, weights_only=True)["config"]["corner_tolerance"])
    assert row["variant"] and row["method"] == "rotated-proposals, box-corner fallback at 0.25"
    assert math.isfinite(row["smape"]) and len(row["report"].cases) == 6


def test_rows_over_training_seeds_show_mean_and_sample_sd():
    common = {"mae_pt": 1.0, "mae_mt": 2.0, "mae_tl": 3.0, "train_s": 10.0, "predict_s": 1.0, "paper": None, "note": ""}
    reports = [
        _run("seg4reg", {"a": "method", "b": "method"}, {"a": [1, 2, 3], "b": [1, 2, 4]}),
        _run("seg4reg", {"a": "zeros", "b": "method"}, {"a": [0, 0, 0], "b": [1, 2, 4]}),
        _run("seg4reg", {"a": "zeros", "b": "zeros"}, {"a": [0, 0, 0], "b": [0, 0, 0]}),
    ]
    runs = [
        {"method": "seg4reg", "smape": smape, **common, "report": report}
        for smape, report in zip((18.0, 20.0, 22.0), reports)
    ]
    row = baselines_aasce.combine_seeds(runs, [0, 1, 2])
    assert row["smape"] == 20.0 and row["smape_sd"] == 2.0 and row["mae_tl"] == 3.0
    text = baselines_aasce.render(
        [{"method": "reference: training mean", "smape": 40.0, **common}, row],
        args=SimpleNamespace(reuse=False, preset="tiny", seed=0, small=True, training_seeds="0,1,2"),
        n_train=2,
        n_test=2,
        device="cpu",
        total_s=1.0,
    )
    line = next(line for line in text.splitlines() if line.startswith("| seg4reg"))
    assert "| 20.00 ± 2.00 |" in line
    assert "| 3/6 (zeros 3), degenerate in 1 of 3 seeds |" in line
    assert "0 of 1 methods that ran beat the training-mean row without being degenerate" in text
    assert "trained with seeds 0,1,2" in text


@pytest.mark.slow  # trains every method twice on a tiny set
def test_benchmark_main_with_two_training_seeds(tmp_path, capsys):
    code = baselines_aasce.main(
        [
            "--preset",
            "tiny",
            "--methods",
            "top-down",
            "--device",
            "cpu",
            "--train-cases",
            "6",
            "--test-cases",
            "2",
            "--training-seeds",
            "0,1",
            "--work",
            str(tmp_path),
            "--no-write",
        ]
    )
    assert code == 0
    assert (tmp_path / "top-down-seed0.pt").is_file() and (tmp_path / "top-down-seed1.pt").is_file()
    seeds = [torch.load(tmp_path / f"top-down-seed{s}.pt", weights_only=True)["config"]["seed"] for s in (0, 1)]
    assert seeds == [0, 1]
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| top-down"))
    assert " ± " in line.split("|")[2] and "/4" in line  # two seeds x two test cases


def test_ct_seed_spread_rows_and_section(tmp_path, capsys):
    import baselines_ct_xr
    import ctxr_spread

    results = [
        {"aggregates": {"dice": 0.5, "loc": 2.0, "label": "x", "missing": None}},
        {"aggregates": {"dice": 0.7, "loc": 4.0, "label": "x", "missing": 1.0}},
    ]
    assert ctxr_spread.spread_rows(results) == [
        ["dice", "0.500", "0.700", "0.600 ± 0.141"],
        ["loc", "2.000", "4.000", "3.000 ± 1.414"],
    ]
    code = baselines_ct_xr.main(
        [
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "--only",
            "none",
            "--spread",
            "vertebra-labelling-xr:unet-residual-corrector",
            "--spread-seeds",
            "0,1",
            "--data-root",
            str(tmp_path),
            "--no-write",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "### Training-seed spread: unet-residual-corrector (vertebra-labelling-xr)" in out
    assert "| Aggregate | seed 0 | seed 1 | mean ± sd |" in out and "| fallback | 0/2" in out
    stored = [
        torch.load(
            tmp_path / "labelling" / "work" / f"spread-unet-residual-corrector-seed{s}" / "unet-residual-corrector.pt",
            weights_only=True,
        )["config"]["seed"]
        for s in (0, 1)
    ]
    assert stored == [0, 1]
