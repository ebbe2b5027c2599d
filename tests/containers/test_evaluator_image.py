"""The evaluator image, run under the evaluation container contract (docs/evaluation.md), gives the same metrics.json
as the platform's built-in scoring path (`evaluators.tasks.evaluate`) and as `python -m evaluators.cli evaluate` on
the host, for a folder of per-case predictions and for a phase CSV, read-only inputs and no network."""

import json
import os
import subprocess
import sys

import pytest

from evaluators.contract import GROUND_TRUTH_MOUNT, MANIFEST_MOUNT, stage_predictions
from evaluators.tasks import evaluate
from spinebench.algorithms.trusted_images import recorded_image

from .conftest import REPO_ROOT, write_spine_dataset

pytestmark = pytest.mark.docker

PREDICTED = {"spine_a": [3.5, 14.0, 10.25], "spine_b": [6.0, 30.5, 8.0], "spine_c": [5.5, 7.75, 12.0]}


def host_metrics(predictions, dataset, out):
    subprocess.run([sys.executable, "-m", "evaluators.cli", "evaluate", "aasce-cobb", "--predictions", str(predictions),
                    "--ground-truth", str(dataset), "--output", str(out), "--quiet"], check=True, cwd=REPO_ROOT,
                   env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return json.loads(out.read_text())


def container_metrics(client, *, predictions, dataset, work):
    """The evaluator under the evaluation container contract: the predictions staged into /input with
    predictions.json (as the platform stages them), the ground truth and its manifest read-only under
    /opt/ml/input/data/."""
    stage_predictions(predictions, work / "input")
    out_dir = work / "output"
    out_dir.mkdir()
    out_dir.chmod(0o777)  # the image runs as uid 1000
    evaluator = recorded_image(client, "spinebench/evaluator:latest")  # run by the id build.sh recorded
    client.containers.run(
        evaluator, ["aasce-cobb"], remove=True, network_mode="none", read_only=True, cap_drop=["ALL"],
        volumes={str(work / "input"): {"bind": "/input", "mode": "ro"},
                 str(dataset / "ground_truth"): {"bind": GROUND_TRUTH_MOUNT, "mode": "ro"},
                 str(dataset / "dataset.json"): {"bind": MANIFEST_MOUNT, "mode": "ro"},
                 str(out_dir): {"bind": "/output", "mode": "rw"}})
    return json.loads((out_dir / "metrics.json").read_text())


def test_evaluator_container_matches_the_cli(built_images, tmp_path):
    dataset = tmp_path / "dataset"
    write_spine_dataset(dataset, split="test")
    folder = tmp_path / "pred"
    for case, angles in PREDICTED.items():
        (folder / case).mkdir(parents=True)
        (folder / case / "angles.json").write_text(json.dumps({"angles": angles}))
    csv = tmp_path / "pred.csv"
    csv.write_text("case_id,pt,mt,tl\n" + "".join(f"{c},{a[0]},{a[1]},{a[2]}\n" for c, a in PREDICTED.items()))
    for predictions in (folder, csv):
        expected = host_metrics(predictions, dataset, tmp_path / f"host-{predictions.name}.json")
        built_in = evaluate("aasce-cobb", predictions=predictions, ground_truth=dataset / "ground_truth",
                            groups=None)  # what the platform's built-in scoring path calls
        got = container_metrics(built_images, predictions=predictions, dataset=dataset,
                                work=tmp_path / f"work-{predictions.name}")
        assert got == expected == json.loads(json.dumps(built_in))
        assert set(got["case"]) == set(PREDICTED) and got["aggregates"]["smape"] > 0
