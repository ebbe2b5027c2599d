"""benchmarks/gpu_check.py on the CPU: its caps are valid settings of every method's paper preset, and its CPU path
(tiny preset, one method) trains, predicts and writes the JSON the lead reads after a GPU run."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import gpu_check  # noqa: E402

from baselines import api  # noqa: E402
from baselines.registry import METHODS, get_method  # noqa: E402

PAPER_MODULES = {
    "baselines.aasce.keypoint", "baselines.aasce.seg4reg", "baselines.aasce.topdown",
    "baselines.aasce.detector_corners", "baselines.aasce.centreline", "baselines.aasce.rotated",
    "baselines.aasce.coarse_to_fine", "baselines.aasce.scgnet", "baselines.aasce.multitask",
    "baselines.fracture.dual_pathway", "baselines.fracture.vae", "baselines.metastatic.unet3d",
    "baselines.labelling.residual_corrector", "baselines.lumbosacral.semi_supervised",
}


def test_one_registered_variant_per_method_of_the_proceedings():
    assert len(gpu_check.METHODS) == 14
    modules = {get_method(task, method).module for method, task in gpu_check.METHODS.items()}
    assert modules == PAPER_MODULES
    assert all(method in METHODS[task] for method, task in gpu_check.METHODS.items())


@pytest.mark.parametrize("method", sorted(gpu_check.METHODS))
def test_caps_are_settings_of_the_paper_preset_and_cut_training_short(method):
    task = gpu_check.METHODS[method]
    spec = get_method(task, method)
    overrides = gpu_check.caps(method, steps=20, train_cases=gpu_check.CASES[task][0])
    config = api.build_config(spec.load(), "paper", {**spec.overrides, **overrides})  # raises on an unknown name
    paper = spec.load().PRESETS["paper"]
    for name, value in overrides.items():
        assert getattr(config, name) == value
        if isinstance(value, int) and name != "kl_anneal_epochs":
            assert value <= getattr(paper, name), f"{name}: the cap {value} is above the paper's value"


def test_cpu_path_with_the_tiny_preset(tmp_path, capsys):
    out = tmp_path / "check.json"
    code = gpu_check.main(["--device", "cpu", "--tiny", "--methods", "top-down", "--out", str(out),
                           "--work", str(tmp_path / "work"), "--workers", "1"])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["preset"] == "tiny" and result["environment"]["device"] == "cpu"
    (row,) = result["rows"]
    assert row["method"] == "top-down" and row["error"] is None
    assert row["steps_recorded"] == 15  # the tiny preset's steps: caps apply to the paper preset only
    assert row["falls"] is True and row["loss_last"] < row["loss_first"]
    assert row["test_cases"] == gpu_check.CASES["aasce-cobb"][1] and row["cases_per_s"] > 0
    assert row["train_peak_gib"] is None and 0.0 <= row["fallback_share"] <= 1.0
    printed = capsys.readouterr().out
    assert "| top-down |" in printed and "cases/s" in printed


def test_a_failing_method_is_recorded_and_the_others_run(tmp_path, monkeypatch):
    def broken(method, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(gpu_check, "check_method", broken)
    monkeypatch.setattr(gpu_check, "generate", lambda task, root, workers: (root, root))
    out = tmp_path / "check.json"
    assert gpu_check.main(["--device", "cpu", "--methods", "top-down,seg4reg", "--out", str(out)]) == 1
    rows = json.loads(out.read_text())["rows"]
    assert [row["method"] for row in rows] == ["top-down", "seg4reg"]
    assert all(row["error"] == "RuntimeError: out of memory (simulated)" for row in rows)


def test_a_method_past_its_time_limit_is_stopped_and_the_budget_skips_the_rest(tmp_path, monkeypatch):
    import time

    def slow(method, **kwargs):
        time.sleep(5)

    monkeypatch.setattr(gpu_check, "check_method", slow)
    monkeypatch.setattr(gpu_check, "generate", lambda task, root, workers: (root, root))
    out = tmp_path / "check.json"
    started = time.perf_counter()
    code = gpu_check.main(["--device", "cpu", "--methods", "top-down,seg4reg", "--out", str(out),
                           "--method-timeout", "0.3", "--budget", "0.2"])
    assert code == 1 and time.perf_counter() - started < 4
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["error"] == "MethodTimeout: stopped after 0.3 s (--method-timeout)"
    assert rows[1]["error"] == "MethodTimeout: skipped: past --budget 0.2 s"
