"""The evaluator image gives the same metrics.json as `python -m evaluators.cli evaluate` on the host, for a folder of
per-case predictions and for a phase CSV, with predictions and dataset mounted read-only and no network."""

import json
import os
import subprocess
import sys

import pytest

from spinebench.algorithms.trusted_images import recorded_image

from .conftest import REPO_ROOT, write_spine_dataset

pytestmark = pytest.mark.docker

PREDICTED = {"spine_a": [3.5, 14.0, 10.25], "spine_b": [6.0, 30.5, 8.0], "spine_c": [5.5, 7.75, 12.0]}


def host_metrics(predictions, dataset, out):
    subprocess.run([sys.executable, "-m", "evaluators.cli", "evaluate", "aasce-cobb", "--predictions", str(predictions),
                    "--ground-truth", str(dataset), "--output", str(out), "--quiet"], check=True, cwd=REPO_ROOT,
                   env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return json.loads(out.read_text())


def container_metrics(client, *, predictions, target, dataset, out_dir):
    out_dir.mkdir()
    out_dir.chmod(0o777)  # the image runs as uid 1000
    evaluator = recorded_image(client, "spinebench/evaluator:latest")  # run by the id build.sh recorded
    client.containers.run(
        evaluator, ["aasce-cobb", target], remove=True, network_mode="none", read_only=True,
        cap_drop=["ALL"], volumes={str(predictions): {"bind": target, "mode": "ro"},
                                   str(dataset): {"bind": "/dataset", "mode": "ro"},
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
    for predictions, target in ((folder, "/predictions"), (csv, "/predictions.csv")):
        expected = host_metrics(predictions, dataset, tmp_path / f"host-{predictions.name}.json")
        got = container_metrics(built_images, predictions=predictions, target=target, dataset=dataset,
                                out_dir=tmp_path / f"out-{predictions.name}")
        assert got == expected
        assert set(got["case"]) == set(PREDICTED) and got["aggregates"]["smape"] > 0
