import numpy as np
import pytest
from scipy import ndimage

from baselines.aasce import centreline
from baselines.nn.spine_targets import tangent_slopes_to_cobb
from tests.baselines.aasce_runs import assert_loss_falls, assert_valid_angles, train_and_predict

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)


def test_cobb_formula_on_hand_worked_slopes():
    # tangents tilted +20 deg, 0, -25 deg (slope dx/dy = tan): major = 45 deg between the extremes
    slopes = np.tan(np.radians([0.0, 20.0, 10.0, 0.0, -10.0, -25.0, -5.0, 5.0]))
    major, upper, lower = tangent_slopes_to_cobb(slopes)
    assert major == pytest.approx(45.0, abs=1e-9)
    assert upper == pytest.approx(20.0, abs=1e-9)  # samples 0..1 (above the 20 deg point, inclusive)
    assert lower == pytest.approx(30.0, abs=1e-9)  # samples 5..7: -25 deg to +5 deg


def test_heat_equation_matches_its_gaussian_closed_form_inside_the_curve():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=400))
    heat = centreline.smooth_curve(x, method="heat", coefficient=0.01, iterations=2000)
    gauss = ndimage.gaussian_filter1d(x, np.sqrt(2 * 0.01 * 2000))
    inside = slice(40, -40)
    assert np.abs(heat[inside] - gauss[inside]).max() < 0.05 * np.ptp(x)
    assert np.abs(np.diff(heat, 2)).mean() < np.abs(np.diff(x, 2)).mean() / 10


def test_curve_extraction_drops_small_components_and_reads_the_middle():
    probability = np.zeros((60, 30))
    probability[5:55, 12:15] = 0.3  # the centreline, above the 0.25 threshold, middle x = 13
    probability[2:4, 25:27] = 0.9  # a 4-pixel blob
    rows, x = centreline.centreline_curve(probability, threshold=0.25, min_component=0.01)
    assert rows[0] == 5 and rows[-1] == 54
    assert np.allclose(x, 13.0)


def test_straight_and_bent_centrelines_give_zero_and_the_bend_angle():
    config = centreline.PRESETS["standard"]
    straight = np.zeros((96, 48))
    straight[5:90, 23:26] = 1
    assert centreline.angles_from_centreline(straight, config)[0] == pytest.approx(0.0, abs=0.5)
    bent = np.zeros((96, 48))
    for row in range(5, 90):  # two straight halves meeting at 2 x 15 = 30 degrees
        x = 24 + np.tan(np.radians(15)) * abs(row - 47.5) - 6
        bent[row, int(round(x)) - 1 : int(round(x)) + 2] = 1
    assert centreline.angles_from_centreline(bent, config)[0] == pytest.approx(30.0, abs=3.0)


def test_tiny_training_lowers_the_loss_and_predicts_valid_angles(aasce_train, aasce_test, tmp_path):
    stored, table, scores = train_and_predict("centreline-cascade", train_dir=aasce_train, test_dir=aasce_test,
                                              tmp_path=tmp_path)
    assert len(stored["state"]) == sum(centreline.PRESETS["tiny"].ensembles)  # ensemble of ensembles
    assert_loss_falls(stored["losses"])
    assert_valid_angles(table, aasce_test, scores)


def test_gaussian_smoothing_without_crop(aasce_train, aasce_test, tmp_path):
    _, table, scores = train_and_predict("centreline-cascade", train_dir=aasce_train, test_dir=aasce_test,
                                         tmp_path=tmp_path, overrides={"smoothing": "gaussian", "crop": False,
                                                                       "ensembles": (1,), "intensity": "gaussian"})
    assert_valid_angles(table, aasce_test, scores)
