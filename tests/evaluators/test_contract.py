"""The evaluation container contract (evaluators.contract): staging predictions into /input with predictions.json,
and checking an image's metrics.json against the phase's declaration."""

import json
import os

import pytest

from evaluators.contract import (
    ContractError,
    Declaration,
    DeclaredMetric,
    manifest_part,
    parse_metrics,
    stage_ground_truth_part,
    stage_predictions,
    validated_metrics,
)

DECLARATION = Declaration(metrics=(
    DeclaredMetric(key="abs_error", label="Absolute error", direction="lower", primary=True, per_case=True),
    DeclaredMetric(key="hit_rate", label="Hit rate", direction="higher"),
))
CASES = ["a", "b", "c"]


def document(**overrides):
    base = {"case": {"a": {"abs_error": 1.0}, "b": {"abs_error": 2.0}, "c": {"abs_error": 6.0}},
            "aggregates": {"abs_error": 3.0, "hit_rate": 0.5}}
    base.update(overrides)
    return base


def test_valid_metrics_keep_the_declared_keys_and_the_mean_of_case_values():
    result = validated_metrics(document(aggregates={"hit_rate": 0.5, "hit_rate@young": 1, "other": 7}),
                               declaration=DECLARATION, case_ids=CASES)
    assert result == {"case": {"a": {"abs_error": 1.0}, "b": {"abs_error": 2.0}, "c": {"abs_error": 6.0}},
                      "aggregates": {"abs_error": 3.0, "hit_rate": 0.5, "hit_rate@young": 1.0}}


@pytest.mark.parametrize("broken, message", [
    ({"aggregates": {"abs_error": 3.0}}, "no aggregate 'hit_rate'"),
    ({"aggregates": {"abs_error": 3.0, "hit_rate": "high"}}, "aggregate 'hit_rate' must be a number, got str"),
    ({"aggregates": {"abs_error": 3.0, "hit_rate": True}}, "aggregate 'hit_rate' must be a number, got bool"),
    ({"aggregates": {"abs_error": 4.0, "hit_rate": 0.5}}, "aggregate 'abs_error' (4) is not the mean"),
    ({"case": {"a": {"abs_error": 1.0}, "b": {"abs_error": 2.0}}}, "no values for case 'c'"),
    ({"case": {"a": {"abs_error": 1.0}, "b": {}, "c": {"abs_error": 1.0}}}, "case 'b' has no metric 'abs_error'"),
    ({"case": {**document()["case"], "zz": {"abs_error": 1.0}}}, "reports case 'zz', which is not a test case"),
    ({"case": []}, '"case" in metrics.json must be an object'),
    ({"aggregates": None}, 'no "aggregates" object'),
])
def test_broken_metrics_are_refused_naming_the_problem(broken, message):
    with pytest.raises(ContractError) as refused:
        validated_metrics(document(**broken), declaration=DECLARATION, case_ids=CASES)
    assert message in str(refused.value)


def test_nan_and_infinity_in_metrics_json_are_refused():
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ContractError, match="not a number"):
            parse_metrics(f'{{"aggregates": {{"hit_rate": {constant}}}}}'.encode())
    with pytest.raises(ContractError, match="not valid JSON"):
        parse_metrics(b"{")
    with pytest.raises(ContractError, match="must be an object"):
        validated_metrics(parse_metrics(b"[1, 2]"), declaration=DECLARATION, case_ids=CASES)


def test_declarations_refuse_bad_keys_duplicates_directions_and_two_primaries():
    metric = DeclaredMetric(key="dice", label="Dice", direction="higher")
    for metrics, message in [
        ((DeclaredMetric(key="1dice", label="x", direction="higher"),), "starting with a letter"),
        ((metric, metric), "declared twice"),
        ((DeclaredMetric(key="dice", label="x", direction="up"),), "must be 'higher' or 'lower'"),
        ((DeclaredMetric(key="a", label="a", direction="lower", primary=True),
          DeclaredMetric(key="b", label="b", direction="lower", primary=True)), "only one metric"),
    ]:
        with pytest.raises(ContractError, match=message):
            Declaration(metrics=metrics)
    with pytest.raises(ContractError, match="predictions format"):
        Declaration(metrics=(metric,), predictions_format="xlsx")
    task = DECLARATION.as_task()
    assert (task.id, task.primary, [m.direction for m in task.metrics]) == ("custom", "abs_error", ["lower", "higher"])
    assert DECLARATION.is_case_mean("abs_error") and not DECLARATION.is_case_mean("hit_rate")


def test_staged_case_folders_are_described_like_grand_challenge_outputs(tmp_path):
    source = tmp_path / "pred"
    (source / "case_1" / "sub").mkdir(parents=True)
    (source / "case_1" / "mask.nii.gz").write_bytes(b"m")
    (source / "case_1" / "sub" / "extra.json").write_text("{}")
    (source / "case_2").mkdir()
    (source / "case_2" / "mask.nii.gz").write_bytes(b"n")
    entries = stage_predictions(source, tmp_path / "input")
    described = json.loads((tmp_path / "input" / "predictions.json").read_text())
    assert described == entries
    assert [entry["pk"] for entry in entries] == ["case_1", "case_2"]
    assert entries[0]["status"] == "Succeeded"
    assert [(o["interface"]["relative_path"], o["file"]) for o in entries[0]["outputs"]] == [
        ("mask.nii.gz", "/input/case_1/mask.nii.gz"), ("sub/extra.json", "/input/case_1/sub/extra.json")]
    assert (tmp_path / "input" / "case_2" / "mask.nii.gz").read_bytes() == b"n"


def test_a_csv_is_staged_as_predictions_csv_and_links_are_refused(tmp_path):
    csv = tmp_path / "upload-83f1.csv"
    csv.write_text("case_id,value\na,1\n")
    entries = stage_predictions(csv, tmp_path / "input")
    assert entries[0]["outputs"][0]["file"] == "/input/predictions.csv"
    assert (tmp_path / "input" / "predictions.csv").read_text() == "case_id,value\na,1\n"
    source = tmp_path / "linked"
    (source / "case_1").mkdir(parents=True)
    os.symlink("/etc/passwd", source / "case_1" / "mask.nii.gz")
    with pytest.raises(ContractError, match="not a regular file"):
        stage_predictions(source, tmp_path / "input-2")


def test_one_part_of_a_split_gets_only_its_cases_predictions(tmp_path):
    source = tmp_path / "pred"
    for case in ("case_1", "case_2", "case_3"):
        (source / case).mkdir(parents=True)
        (source / case / "mask.nii.gz").write_bytes(case.encode())
    entries = stage_predictions(source, tmp_path / "input", {"case_1", "case_3"})
    assert [entry["pk"] for entry in entries] == ["case_1", "case_3"]
    assert not (tmp_path / "input" / "case_2").exists()
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("value,case_id\n1,case_1\n2,case_2\n3,case_3\n")
    stage_predictions(csv_file, tmp_path / "input-csv", {"case_2"})
    assert (tmp_path / "input-csv" / "predictions.csv").read_text().splitlines() == ["value,case_id", "2,case_2"]
    no_column = tmp_path / "q.csv"
    no_column.write_text("id,value\ncase_1,1\n")
    with pytest.raises(ContractError, match="q.csv has no case_id column"):
        stage_predictions(no_column, tmp_path / "input-bad", {"case_1"})


def test_one_part_of_a_split_gets_only_its_cases_ground_truth(tmp_path):
    truth = tmp_path / "ground_truth"
    (truth / "case_2").mkdir(parents=True)
    (truth / "case_2" / "label.nii.gz").write_bytes(b"2")
    (truth / "case_1.nii.gz").write_bytes(b"1")
    (truth / "case_3.nii.gz").write_bytes(b"3")
    (truth / "labels.csv").write_text("case_id,grade\ncase_1,0\ncase_2,1\ncase_3,2\n")
    (truth / "extra.json").write_text(json.dumps({"case_1": 1, "case_2": 2, "case_3": 3}))
    everyone = {"case_1", "case_2", "case_3"}
    stage_ground_truth_part(truth, tmp_path / "part", case_ids={"case_2", "case_3"}, all_case_ids=everyone)
    staged = sorted(p.relative_to(tmp_path / "part").as_posix() for p in (tmp_path / "part").rglob("*"))
    assert staged == ["case_2", "case_2/label.nii.gz", "case_3.nii.gz", "extra.json", "labels.csv"]
    assert (tmp_path / "part" / "labels.csv").read_text().splitlines() == ["case_id,grade", "case_2,1", "case_3,2"]
    assert json.loads((tmp_path / "part" / "extra.json").read_text()) == {"case_2": 2, "case_3": 3}
    (truth / "notes.txt").write_text("case_1 is hard")
    with pytest.raises(ContractError, match="ground truth notes.txt cannot be split by case"):
        stage_ground_truth_part(truth, tmp_path / "part-2", case_ids={"case_1"}, all_case_ids=everyone)
    manifest = {"task": "custom", "cases": [{"id": "case_1"}, {"id": "case_2", "group": "a"}]}
    assert manifest_part(manifest, {"case_2"}) == {"task": "custom", "cases": [{"id": "case_2", "group": "a"}]}
