"""Dual-pathway 3D CNN fracture detection (Nicolaes et al.): architecture, label images, aggregation, training and
prediction on a small fracture-ct dataset."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import phantoms
from baselines.fracture import dual_pathway as dp
from baselines.fracture.common import FractureDataError, stratified_folds
from tests.conftest import without_ground_truth

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)

TINY = replace(dp.PRESETS["tiny"], epochs=6, segments_per_epoch=16)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return phantoms.generate("fracture-ct", out=tmp_path_factory.mktemp("fracture") / "train", cases=5, seed=3,
                             small=True, progress=False)


@pytest.fixture(scope="module")
def checkpoint(dataset):
    torch.set_num_threads(1)
    return dp.train(data_dir=dataset, config=TINY, device="cpu", progress=False)


def test_paper_model_has_about_230k_parameters_and_variants_match_it():
    counts = {v: dp.count_parameters(dp.build_model(replace(dp.PRESETS["paper"], variant=v))) for v in dp.VARIANTS}
    print("dual-pathway parameters:", counts)
    assert abs(counts["3d"] - 230_000) / 230_000 < 0.03
    for variant in ("1slice", "5slices"):
        assert abs(counts[variant] - counts["3d"]) / counts["3d"] < 0.03
    # the 2D variants reach that count with wider layers, not the same ones
    assert dp.variant_widths("1slice", dp.PRESETS["paper"].widths, 100, 3) > dp.PRESETS["paper"].widths


def _support(module, shape):
    """Extent per axis (z, y, x) of the input voxels the central output voxel depends on. Weights are made
    positive so no ReLU can hide a path, and batch norm runs with its initial statistics (identity)."""
    module = module.eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.abs_().add_(0.01)
    image = torch.ones((1, 1, *shape), requires_grad=True)
    output = module(image)
    centre = tuple(n // 2 for n in output.shape[2:])
    output[(0, 0, *centre)].backward()
    nonzero = np.argwhere(image.grad[0, 0].numpy() > 0)
    return tuple(int(v) for v in nonzero.max(axis=0) - nonzero.min(axis=0) + 1)


@pytest.mark.parametrize(
    "variant, normal, subsampled",
    [("3d", (17, 17, 17), (51, 51, 51)), ("1slice", (17, 17, 1), (51, 51, 3)), ("5slices", (17, 17, 5), (51, 51, 15))],
)
def test_receptive_fields(variant, normal, subsampled):
    model = dp.build_model(replace(dp.PRESETS["tiny"], variant=variant))
    assert _support(model.normal, (21, 21, 21)) == normal
    side = 3 + 2 * model.margin  # one output voxel of the subsampled pathway: 3 full-resolution voxels
    assert _support(model, tuple(int(s) for s in side)) == subsampled
    assert model(torch.zeros(1, 1, *(int(s) for s in side))).shape[2:] == (3, 3, 3)


def test_label_image_ellipsoids_are_flattened_for_fractures():
    centroids = {"L1": np.array([10.0, 15, 15]), "L2": np.array([20.0, 15, 15]), "L3": np.array([30.0, 15, 15])}
    config = replace(dp.PRESETS["tiny"], ellipsoid_fractions=(0.35, 0.45, 0.5), fracture_flattening=0.6)
    labels = dp.label_image((40, 30, 30), centroids, {"L2": True}, spacing_mm=1.0, config=config)
    # median centroid distance 10 voxels: SI semi-axis 3.5 (normal) and 2.1 (fractured)
    assert labels[10, 15, 15] == 1 and labels[20, 15, 15] == 2 and labels[30, 15, 15] == 1
    assert labels[13, 15, 15] == 1 and labels[14, 15, 15] == 0
    assert labels[22, 15, 15] == 2 and labels[23, 15, 15] == 0
    assert labels[10, 15, 19] == 1 and labels[10, 15, 20] == 1 and labels[10, 15, 21] == 0  # LR semi-axis 5
    assert labels[0, 0, 0] == 0


def test_vertebra_scores_weight_the_cube_around_the_centroid():
    config = replace(dp.PRESETS["tiny"], cube_mm=10.0, cube_sigma_mm=4.0, spacing_mm=1.0)
    fracture = np.full((30, 30, 30), 0.7, np.float32)
    scores = dp.vertebra_scores(fracture, {"L1": np.array([15.0, 15, 15])}, config=config)
    assert scores["L1"] == pytest.approx(0.7)
    # a hot voxel at the centroid counts more than the same voxel at the cube corner
    spike = np.zeros((30, 30, 30), np.float32)
    spike[15, 15, 15] = 1.0
    corner = np.zeros((30, 30, 30), np.float32)
    corner[19, 19, 19] = 1.0
    centre = {"L1": np.array([15.0, 15, 15])}
    at_centre = dp.vertebra_scores(spike, centre, config=config)["L1"]
    assert at_centre > dp.vertebra_scores(corner, centre, config=config)["L1"] > 0
    outside = np.zeros((30, 30, 30), np.float32)
    outside[15, 15, 25] = 1.0
    assert dp.vertebra_scores(outside, centre, config=config)["L1"] == 0.0
    noisy = dp.vertebra_scores(fracture, centre, config=config, noise_mm=3.0, rng=np.random.default_rng(0))
    assert noisy["L1"] == pytest.approx(0.7)


def test_largest_components_and_patient_score():
    fracture = np.zeros((20, 20, 20), np.float32)
    fracture[2:5, 2:5, 2:5] = 0.9  # 27 voxels
    fracture[10:12, 10:12, 10:12] = 0.5  # 8 voxels
    sizes = dp.largest_components(fracture, (0.1, 0.6, 0.95))
    assert sizes.tolist() == [27, 27, 0]
    config = replace(dp.PRESETS["tiny"], probability_thresholds=(0.1, 0.6, 0.95), noise_threshold=10)
    assert dp.patient_score(sizes, config) == 0.6
    assert dp.patient_score(np.array([8, 0, 0]), config) == 0.0


def test_patient_hull_auc_hand_worked():
    # one probability threshold, noise thresholds 1 and 10: (size >= 1) flags 2 of 2 positives and 1 of 2 negatives,
    # (size >= 10) flags 1 positive and no negative: hull (0,0) (0,.5) (.5,1) (1,1), area 0.875
    config = replace(dp.PRESETS["tiny"], probability_thresholds=(0.5,), noise_thresholds=(1, 10))
    sizes = np.array([[20], [5], [3], [0]])
    assert dp.hull_auc([True, True, False, False], sizes, config) == pytest.approx(0.875)


def test_stratified_folds_keep_two_negatives_per_fold():
    labels = np.array([0] * 10 + [1] * 30, bool)
    folds = stratified_folds(labels, n_folds=5, min_negatives=2, seed=1)
    assert len(folds) == 5
    assert sorted(np.concatenate(folds).tolist()) == list(range(40))
    assert all((~labels[fold]).sum() >= 2 and labels[fold].sum() == 6 for fold in folds)
    assert len(stratified_folds(np.array([0] * 6 + [1] * 30, bool), n_folds=5, min_negatives=2, seed=1)) == 3
    with pytest.raises(FractureDataError, match="negative"):
        stratified_folds(np.array([0] * 3 + [1] * 30, bool), n_folds=5, min_negatives=2, seed=1)


def test_tiny_training_lowers_the_loss(checkpoint):
    losses = checkpoint["losses"]
    assert len(losses) == TINY.epochs and np.isfinite(losses).all()
    assert np.mean(losses[-3:]) < losses[0]


def test_predictions_have_the_task_format_without_ground_truth(dataset, checkpoint, tmp_path):
    blind = without_ground_truth(dataset, tmp_path / "blind")
    predictions = dp.predict(checkpoint=checkpoint, data_dir=blind, config=TINY, device="cpu", progress=False)
    assert sorted(predictions) == sorted(p.name for p in (dataset / "inputs").iterdir())
    for case_id, prediction in predictions.items():
        centroids = json.loads((blind / "inputs" / case_id / "centroids.json").read_text())
        assert set(prediction) == {"vertebrae", "patient"}
        assert set(prediction["vertebrae"]) == set(centroids)
        assert all(0.0 <= p <= 1.0 for p in prediction["vertebrae"].values())
        assert 0.0 <= prediction["patient"] <= 1.0


def test_config_rejects_unknown_variant_and_misaligned_segments():
    with pytest.raises(ValueError, match="variant"):
        dp.Config(variant="2d")
    with pytest.raises(ValueError, match="multiple of subsample"):
        dp.Config(segment_output=10)
    with pytest.raises(ValueError, match="loss_balance"):
        dp.Config(loss_balance="focal")
    with pytest.raises(ValueError, match="flip_axes"):
        dp.Config(flip_axes=(3,))


def test_class_balanced_loss_averages_the_class_means():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, 4)
    targets = torch.zeros(2, 4, 4, 4, dtype=torch.long)
    targets[0, 0, 0, :2] = 2  # two fracture voxels
    targets[1, :2] = 1  # 32 normal voxels
    targets[1, 3] = dp.IGNORE  # padding: never counted
    voxels = torch.nn.functional.cross_entropy(logits, targets, ignore_index=dp.IGNORE, reduction="none")
    expected = torch.stack([voxels[targets == c].mean() for c in range(3)]).mean()
    balanced = dp.segment_loss(logits, targets, replace(TINY, loss_balance="class"))
    torch.testing.assert_close(balanced, expected)
    plain = dp.segment_loss(logits, targets, replace(TINY, loss_balance="voxel"))
    torch.testing.assert_close(plain, voxels[targets != dp.IGNORE].mean())
    # a batch without fracture voxels averages over the classes it has
    only = dp.segment_loss(logits, torch.where(targets == 2, 0, targets), replace(TINY, loss_balance="class"))
    assert torch.isfinite(only)


def test_standard_preset_fits_five_folds_with_two_negatives():
    for config in (dp.PRESETS["standard"], dp.PRESETS["paper"]):
        assert config.folds == 5 and config.min_negatives_per_fold == 2
