"""Fuzzing the CSV prediction readers of all five tasks (evaluators.formats.load_predictions, and evaluate() for the
tasks whose scoring is cheap): a clear PredictionError or a valid result, never another exception, never a write
anywhere, bounded memory. Examples per test are in the test ids (`<task>-<n>`): structured CSVs 5 x 150 = 750,
raw bytes 5 x 150 = 750."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluators import formats
from evaluators.errors import PredictionError
from evaluators.layout import VERTEBRA_LABELS
from evaluators.tasks import evaluate

from .budget import EXAMPLES, bounded_memory, fuzz_settings, tree

CASES = ("c1", "c2", "case_3")
COLUMNS = {
    "aasce-cobb": ("case_id", "pt", "mt", "tl"),
    "fracture-ct": ("case_id", "vertebra", "probability"),
    "vertebra-labelling-xr": ("case_id", "vertebra", "x", "y"),
    "metastatic-body-ct": ("case_id", "label"),
    "lumbosacral-ct": ("case_id", "label"),
}
TASKS = list(COLUMNS)
CHEAP_TO_SCORE = {"aasce-cobb", "vertebra-labelling-xr"}

hostile_text = st.lists(
    st.sampled_from(list(',"\n\r\t ;\ufeff\x00_-+.eE0123456789١٢३xX') + ["nan", "inf", "patient", "L1", "c1"]),
    max_size=12,
).map("".join)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(["1_0", "١٠", "0x1f", "1e999", "-0", ".5", "5.", "+1e-3", " 7 ", ""]),
    hostile_text,
)
fields = {
    "case_id": st.one_of(st.sampled_from(CASES), hostile_text, st.text(max_size=200)),
    "vertebra": st.one_of(st.sampled_from([*VERTEBRA_LABELS, "patient"]), hostile_text),
}
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def csv_documents(draw, task: str) -> bytes:
    header = list(COLUMNS[task])
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    header += draw(st.lists(st.sampled_from(["extra", "pt", "Case_ID", ""]), max_size=2))
    rows = [",".join(header)]
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 9)) == 0:
            rows.append(draw(st.sampled_from(["", "  ", ",,,"])))
            continue
        values = [draw(fields.get(column, numbers)) for column in header]
        if draw(st.integers(0, 6)) == 0:
            values = values[: draw(st.integers(0, len(values)))] + draw(st.lists(hostile_text, max_size=2))
        quote = draw(st.booleans())
        rows.append(",".join(f'"{value}"' if quote else value for value in values))
    text = draw(line_ends).join(rows) + draw(st.sampled_from(["", "\n", "\r\n"]))
    prefix = draw(st.sampled_from(["", "\ufeff", "\n\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1"]))
    return (prefix + text).encode(encoding, errors="replace")


def check_parse(task: str, content: bytes, tmp_path, ground_truth=None) -> None:
    folder = tmp_path / "upload"
    folder.mkdir(exist_ok=True)
    path = folder / "predictions.csv"
    path.write_bytes(content)
    before = tree(tmp_path)
    try:
        loaded = formats.load_predictions(task, path, case_ids=CASES)
    except PredictionError as error:
        message = str(error)
        assert message.startswith("predictions.csv") and len(message) < 600, message
    else:
        assert list(loaded) == list(CASES)
        for prediction in loaded.values():
            values = prediction.get("angles", [])
            assert all(math.isfinite(float(v)) for v in values)
        if ground_truth is not None and task in CHEAP_TO_SCORE:
            try:
                metrics = evaluate(task, predictions=path, ground_truth=ground_truth)
            except PredictionError:
                pass
            else:
                assert set(metrics["case"]) == set(CASES)
    assert tree(tmp_path) == before  # the parser wrote nothing


@pytest.fixture(scope="module")
def ground_truths(tmp_path_factory):
    import json

    root = tmp_path_factory.mktemp("gt")
    result = {}
    for task in CHEAP_TO_SCORE:
        gt = root / task / "ground_truth"
        gt.mkdir(parents=True)
        if task == "aasce-cobb":
            (gt / "angles.csv").write_text("case_id,pt,mt,tl\n" + "".join(f"{c},10,20,30\n" for c in CASES))
        else:
            for case in CASES:
                (gt / f"{case}.json").write_text(json.dumps({"centroids": {"L1": [1.0, 2.0]}, "view": "ap"}))
        (root / task / "dataset.json").write_text(json.dumps(
            {"task": task, "split": "test", "domain": "test", "cases": [{"id": c} for c in CASES]}))
        result[task] = root / task
    return result


@pytest.mark.parametrize("task", TASKS, ids=[f"{task}-{EXAMPLES}" for task in TASKS])
def test_structured_csv(task, tmp_path, ground_truths):
    @fuzz_settings()
    @given(data=st.data())
    def run(data):
        check_parse(task, data.draw(csv_documents(task)), tmp_path, ground_truths.get(task))

    with bounded_memory():
        run()


@pytest.mark.parametrize("task", TASKS, ids=[f"{task}-{EXAMPLES}" for task in TASKS])
def test_raw_bytes(task, tmp_path):
    @fuzz_settings()
    @given(content=st.binary(max_size=400))
    def run(content):
        check_parse(task, content, tmp_path)

    with bounded_memory():
        run()
