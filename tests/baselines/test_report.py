"""Run reports (baselines.report): fallback shares, constant and degenerate runs, the JSON file beside the
predictions that baselines.api.predict writes, and a real method whose fallback fires."""

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from baselines import api, report
from baselines.report import RunReport, assess, note_fallback, read_report, recording, report_path


def _angles(*values):
    return {"angles": [float(v) for v in values]}


def test_fallback_share_and_the_half_rule():
    predictions = {c: _angles(i, 2 * i, 3 * i) for i, c in enumerate("abcd")}
    half = assess(
        task="aasce-cobb",
        method="m",
        cases={"a": "method", "b": "method", "c": "zeros", "d": "zeros"},
        predictions=predictions,
    )
    assert half.fallback_share == 0.5 and not half.constant and not half.degenerate and half.reason == ""

    most = assess(
        task="aasce-cobb",
        method="m",
        cases={"a": "method", "b": "training-mean", "c": "zeros", "d": "training-mean"},
        predictions=predictions,
    )
    assert most.fallback_share == 0.75
    assert most.degenerate and not most.constant
    assert "3 of 4 cases" in most.reason and "training-mean on 2" in most.reason and "zeros on 1" in most.reason
    assert most.fallback_counts == {"training-mean": 2, "zeros": 1}
    assert most.summary() == "3/4 (training-mean 2, zeros 1), degenerate" and half.summary() == "2/4 (zeros 2)"


def test_constant_predictions_are_degenerate_without_any_fallback():
    same = assess(
        task="aasce-cobb",
        method="m",
        cases={c: "method" for c in "abc"},
        predictions={c: _angles(12.5, 20.0, 7.25) for c in "abc"},
    )
    assert same.constant and same.degenerate and same.fallback_share == 0.0
    assert "3 cases got the same prediction" in same.reason

    one_differs = {c: _angles(12.5, 20.0, 7.25) for c in "abc"} | {"c": _angles(12.5, 20.0, 7.26)}
    assert not assess(
        task="aasce-cobb", method="m", cases={c: "method" for c in "abc"}, predictions=one_differs
    ).constant
    # the same numbers in another order are another prediction
    swapped = {"a": _angles(1, 2, 3), "b": _angles(3, 2, 1)}
    assert not assess(task="aasce-cobb", method="m", cases={"a": "method", "b": "method"}, predictions=swapped).constant
    # one case cannot show that a method ignores its input
    single = assess(task="aasce-cobb", method="m", cases={"a": "method"}, predictions={"a": _angles(1, 2, 3)})
    assert not single.constant and not single.degenerate


def test_empty_masks_and_one_score_everywhere_are_constant_whatever_the_shapes_and_names():
    masks = {"a": np.zeros((4, 5, 6), np.uint8), "b": np.zeros((3, 3, 3), np.uint8)}
    assert assess(task="t", method="m", cases={"a": "method", "b": "method"}, predictions=masks).constant
    images = {key: sitk.GetImageFromArray(value) for key, value in masks.items()}
    assert assess(task="t", method="m", cases={"a": "method", "b": "method"}, predictions=images).constant
    found = dict(masks, b=np.pad(np.ones((1, 1, 1), np.uint8), 1))
    assert not assess(task="t", method="m", cases={"a": "method", "b": "method"}, predictions=found).constant

    scores = {
        "p1": {"vertebrae": {"L1": 0.5, "L2": 0.5}, "patient": 0.5},
        "p2": {"vertebrae": {"T12": 0.5, "L1": 0.5, "L3": 0.5}, "patient": 0.5},
    }
    assert assess(task="t", method="m", cases={"p1": "method", "p2": "method"}, predictions=scores).constant
    scores["p2"]["vertebrae"]["L3"] = 0.9
    assert not assess(task="t", method="m", cases={"p1": "method", "p2": "method"}, predictions=scores).constant


def test_no_cases_is_degenerate_and_mismatched_ids_are_refused():
    empty = assess(task="t", method="m", cases={}, predictions={})
    assert empty.degenerate and empty.reason == "The run predicted no cases."
    with pytest.raises(ValueError, match="different case ids"):
        assess(task="t", method="m", cases={"a": "method"}, predictions={"b": _angles(1, 2, 3)})


def test_report_file_round_trip_and_errors(tmp_path):
    run = assess(
        task="aasce-cobb",
        method="m",
        cases={"a": "zeros", "b": "method"},
        predictions={"a": _angles(0, 0, 0), "b": _angles(1, 2, 3)},
    )
    assert report_path(tmp_path / "pred.csv") == tmp_path / "pred.csv.report.json"
    assert report_path(tmp_path / "pred") == tmp_path / "pred.report.json"
    path = report.write_report(run, report_path(tmp_path / "pred.csv"))
    assert json.loads(path.read_text()) == {
        "method": "m",
        "task": "aasce-cobb",
        "cases": {"a": "zeros", "b": "method"},
        "fallback_share": 0.5,
        "constant": False,
        "degenerate": False,
        "reason": "",
    }
    assert read_report(path) == run
    assert RunReport.from_dict(run.as_dict()) == run
    with pytest.raises(ValueError, match="missing"):
        RunReport.from_dict({"method": "m"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a run report"):
        read_report(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="no run report"):
        read_report(tmp_path / "missing.json")


def test_notes_are_kept_only_inside_recording():
    note_fallback("outside", "zeros")  # dropped: nobody records
    with recording() as notes:
        note_fallback("a", "zeros")
        with recording() as inner:
            note_fallback("b", "training-mean")
        note_fallback("c", "box-corners")
    assert notes == {"a": "zeros", "c": "box-corners"} and inner == {"b": "training-mean"}
    with pytest.raises(ValueError):
        note_fallback("a", "method")


@dataclass(frozen=True)
class _FakeConfig:
    seed: int = 0


def test_api_predict_writes_the_report_beside_the_predictions(monkeypatch, tmp_path):
    """A stand-in method module: case 'b' falls back, 'a' and 'c' do not; the CSV keeps the task's format."""

    def fake_predict(*, checkpoint, data_dir, config, device, progress):
        note_fallback("b", "training-mean")
        return {"a": _angles(10, 20, 30), "b": _angles(5, 5, 5), "c": _angles(11, 21, 31)}

    module = SimpleNamespace(Config=_FakeConfig, predict=fake_predict)
    monkeypatch.setattr(api, "get_method", lambda task, method: SimpleNamespace(load=lambda: module))
    monkeypatch.setattr(api, "load_checkpoint", lambda path, **kwargs: {"config": {"seed": 0}})
    path = api.predict(
        "aasce-cobb",
        "fake",
        checkpoint=tmp_path / "x.pt",
        data_dir=tmp_path,
        out=tmp_path / "p.csv",
        device="cpu",
        progress=False,
    )
    assert path == tmp_path / "p.csv"
    table = pd.read_csv(path, dtype={"case_id": str})
    assert list(table.columns) == ["case_id", "pt", "mt", "tl"] and list(table["case_id"]) == ["a", "b", "c"]
    run = read_report(Path(str(path) + ".report.json"))
    assert run.cases == {"a": "method", "b": "training-mean", "c": "method"}
    assert run.fallback_share == pytest.approx(1 / 3) and not run.degenerate
    assert (run.method, run.task) == ("fake", "aasce-cobb")


def test_a_real_method_reports_its_fallback_when_it_finds_no_spine(aasce_train, aasce_test, tmp_path):
    """Top-down needs `min_spine_pixels` spine pixels; asking for more than an image has makes every case fall back
    to the training mean, which the report must say (and flag the run as constant and degenerate)."""
    checkpoint = api.train(
        "aasce-cobb",
        "top-down",
        preset="tiny",
        data_dir=aasce_train,
        out=tmp_path / "m.pt",
        device="cpu",
        progress=False,
        overrides={"min_spine_pixels": 10**9},
    )
    path = api.predict(
        "aasce-cobb",
        "top-down",
        checkpoint=checkpoint,
        data_dir=aasce_test,
        out=tmp_path / "p.csv",
        device="cpu",
        progress=False,
    )
    run = read_report(report_path(path))
    expected_mean = pd.read_csv(aasce_train / "ground_truth" / "angles.csv")[["pt", "mt", "tl"]].mean().to_numpy()
    predicted = pd.read_csv(path)[["pt", "mt", "tl"]].to_numpy(float)
    np.testing.assert_allclose(predicted, np.repeat(expected_mean[None], len(predicted), axis=0), atol=1e-6)
    assert set(run.cases.values()) == {"training-mean"} and len(run.cases) == len(predicted)
    assert run.fallback_share == 1.0 and run.constant and run.degenerate
