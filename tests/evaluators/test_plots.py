"""Plot helpers write PNGs and draw the numbers they claim (Bland-Altman statistics by hand, band bounds)."""

import numpy as np
import pytest
from PIL import Image

from evaluators import metrics, plots


def test_bland_altman_statistics_and_png(tmp_path):
    truth = np.array([[10.0, 20, 5], [30, 10, 0], [20, 15, 8], [40, 30, 12]])
    predicted = truth + np.array([[1.0, -2, 0], [3, 0, 1], [-1, 2, 1], [1, 0, 2]])
    path, stats = plots.plot_bland_altman(tmp_path / "ba.png", ground_truth=truth, predictions=predicted)
    differences = np.array([1.0, 3, -1, 1])  # PT: mean 1, sample SD sqrt(8/3)
    assert stats["PT"]["bias"] == pytest.approx(1.0)
    assert stats["PT"]["upper"] == pytest.approx(1 + 1.96 * differences.std(ddof=1))
    assert stats["TL"]["bias"] == pytest.approx(1.0) and stats["MT"]["bias"] == pytest.approx(0.0)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 500
    with pytest.raises(ValueError, match="expected two"):
        plots.bland_altman(truth[:, :2], predicted[:, :2])


def test_roc_plot_with_band_points_and_hull(tmp_path):
    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.4).astype(int)
    scores = rng.normal(labels, 1.0)
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    grid, lower, upper = plots.roc_band(labels, scores, n_bootstrap=50)
    assert np.all(lower <= upper) and lower[-1] == 1.0 and grid[0] == 0.0
    auc, low, high = metrics.roc_auc_ci(labels, scores, n_bootstrap=50)
    path = plots.plot_roc(
        tmp_path / "roc" / "roc.png",
        curves={"method": {"fpr": fpr, "tpr": tpr, "auc": auc, "ci": (low, high)}},
        band=(grid, lower, upper),
        points={"t=0.5": (0.2, 0.7), "t=0.3": (0.4, 0.8)},
        hull=True,
        title="vertebra level",
    )
    with Image.open(path) as image:
        assert image.format == "PNG"
