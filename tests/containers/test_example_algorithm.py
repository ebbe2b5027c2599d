"""The example AASCE algorithm, run through the platform's runner on a real engine: it must recover the Cobb angle of
a synthetic spine whose curvature is known in closed form, in single-case and batch layouts."""

import json

import pytest

from spinebench.algorithms import runner

from .conftest import AASCE_OUTPUTS, EXAMPLE_IMAGE, sinusoid_spine

pytestmark = pytest.mark.docker


def test_example_recovers_known_cobb_angle(built_images, case_input, tmp_path):
    input_dir, expected_mt = case_input
    result = runner.run_algorithm(
        client=built_images,
        image=EXAMPLE_IMAGE,
        input_dir=input_dir,
        collect_to=tmp_path / "pred",
        limits=runner.PRESETS["tiny"],
        allowed_names=AASCE_OUTPUTS,
    )
    assert result.succeeded, (result.reason, result.log_tail)
    angles = json.loads((tmp_path / "pred" / "angles.json").read_text())["angles"]
    assert len(angles) == 3 and all(angle >= 0 for angle in angles)
    assert angles[1] == pytest.approx(expected_mt, abs=3.0)


def test_example_batch_layout_and_flat_spine(built_images, tmp_path):
    curved = sinusoid_spine(tmp_path / "inputs" / "curved" / "image.png", amplitude=30)
    straight = sinusoid_spine(tmp_path / "inputs" / "straight" / "image.png", amplitude=0.0, seed=1)
    result = runner.run_algorithm(
        client=built_images,
        image=EXAMPLE_IMAGE,
        input_dir=tmp_path / "inputs",
        collect_to=tmp_path / "pred",
        limits=runner.PRESETS["tiny"],
        allowed_names=AASCE_OUTPUTS,
        case_ids=["curved", "straight"],
    )
    assert result.succeeded, (result.reason, result.log_tail)
    assert sorted(result.files) == ["curved/angles.json", "straight/angles.json"]
    curved_mt = json.loads((tmp_path / "pred" / "curved" / "angles.json").read_text())["angles"][1]
    straight_mt = json.loads((tmp_path / "pred" / "straight" / "angles.json").read_text())["angles"][1]
    assert curved_mt == pytest.approx(curved, abs=3.0)
    assert straight == 0.0 and straight_mt < 3.0
