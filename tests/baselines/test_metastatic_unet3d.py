"""Metastatic body segmentation (Klein et al.): volume helpers, augmentation families, tiny training, prediction
format and geometry, no ground-truth access at prediction."""

from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from baselines.metastatic import METHODS, unet3d
from baselines.nn.volumes import (
    degrade_resolution,
    resample_to_spacing,
    soft_dice_loss,
    window_starts,
)
from evaluators import formats, tasks
from tests.baselines.ctxr_datasets import build
from tests.conftest import without_ground_truth

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)

torch.set_num_threads(1)
TASK = "metastatic-body-ct"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("metastatic")
    return build(TASK, root / "train", cases=4, seed=0), build(TASK, root / "test", cases=1, seed=1, test=True)


@pytest.fixture(scope="module")
def trained(data):
    config = replace(unet3d.PRESETS["tiny"], augmentation="STR", epochs=4)
    return config, unet3d.train(data_dir=data[0], config=config, device="cpu", progress=False)


def test_methods_cover_the_eight_settings():
    assert sorted(o["augmentation"] for _, o in METHODS.values()) == sorted(unet3d.AUGMENTATIONS)
    with pytest.raises(ValueError, match="augmentation"):
        unet3d.Config(augmentation="X")


def test_paper_preset_matches_the_paper():
    paper = unet3d.PRESETS["paper"]
    assert (paper.levels, paper.base_filters, paper.input_size, paper.learning_rate) == (6, 32, (64, 128, 128), 1e-4)
    assert unet3d.build_network(paper).widths == [32, 64, 128, 256, 512, 1024]


def test_soft_dice_loss_by_hand():
    p = torch.tensor([[[1.0, 0.5, 0.0, 0.0]]])
    t = torch.tensor([[[1.0, 1.0, 0.0, 1.0]]])
    # intersection 1.5, |P| + |T| = 1.5 + 3; eps = 0
    assert soft_dice_loss(p, t, eps=0.0).item() == pytest.approx(1 - 3.0 / 4.5)


def test_window_starts_cover_the_axis():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    assert window_starts(3, 4, 2) == [0]


def test_resample_to_spacing_keeps_extent():
    image = sitk.Image(10, 8, 6, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 2.0))
    image.SetOrigin((5.0, -3.0, 1.0))
    out = resample_to_spacing(image, (0.5, 0.5, 1.0), labels=False)
    assert out.GetSize() == (20, 16, 12)
    assert out.GetOrigin() == image.GetOrigin()


def test_augmentation_families():
    generator = torch.Generator().manual_seed(3)
    image = torch.zeros(1, 1, 16, 24, 24)
    mask = torch.zeros(1, 16, 24, 24, dtype=torch.long)
    mask[:, 5:11, 8:16, 8:16] = 1
    image[0, 0][mask[0] == 1] = 1.0
    base = unet3d.PRESETS["tiny"]
    same_image, same_mask = unet3d.augment(image, mask, config=replace(base, augmentation="N"), generator=generator)
    assert torch.equal(same_image, image) and torch.equal(same_mask, mask)
    image[0, 0] += torch.rand(16, 24, 24, generator=torch.Generator().manual_seed(5))  # anatomy everywhere
    moved = []
    for _ in range(6):
        window_image, window_mask = unet3d.augment(
            image, mask, config=replace(base, augmentation="T", translate_fraction=0.25), generator=generator
        )
        # a window of 1 - 0.25 in-plane and 1 - 0.125 in z, cut from the patch: every voxel is real anatomy
        assert tuple(window_image.shape[2:]) == (14, 18, 18) and tuple(window_mask.shape[1:]) == (14, 18, 18)
        offsets = [
            (z, y, x) for z in range(3) for y in range(7) for x in range(7)
            if torch.equal(window_image[0, 0], image[0, 0, z:z + 14, y:y + 18, x:x + 18])
        ]
        assert len(offsets) == 1
        z, y, x = offsets[0]
        assert torch.equal(window_mask[0], mask[0, z:z + 14, y:y + 18, x:x + 18])
        centre = torch.nonzero(window_mask[0]).float().mean(0)
        moved.append((centre - (torch.tensor([14.0, 18.0, 18.0]) - 1) / 2).abs().max().item())
    assert max(moved) > 1.0  # the body sits off-centre in the window
    resampled_image, resampled_mask = unet3d.augment(
        image, mask, config=replace(base, augmentation="R", resample_mm=(2.0, 2.0)), generator=generator
    )
    assert torch.equal(resampled_mask, mask)  # resampling degrades the image only
    torch.testing.assert_close(resampled_image, degrade_resolution(image, 2.0))
    assert not torch.equal(resampled_image, image)


def test_tiny_training_lowers_the_loss(trained):
    _, checkpoint = trained
    losses = checkpoint["losses"]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_predictions_have_the_input_geometry_and_score(trained, data, tmp_path):
    config, checkpoint = trained
    blind = without_ground_truth(data[1], tmp_path / "blind")
    predictions = unet3d.predict(checkpoint=checkpoint, data_dir=blind, config=config, device="cpu", progress=False)
    assert set(predictions) == set(formats.load_ground_truth(TASK, data[1] / "ground_truth"))
    for case_id, segmentation in predictions.items():
        reference = sitk.ReadImage(str(data[1] / "inputs" / case_id / "image.nii.gz"))
        assert formats.geometry_mismatch(segmentation, reference) is None
        assert set(np.unique(sitk.GetArrayFromImage(segmentation))) <= {0, 1}
    formats.write_predictions(TASK, predictions, tmp_path / "pred")
    metrics = tasks.evaluate(TASK, predictions=tmp_path / "pred", ground_truth=data[1])
    assert {"dice", "concurrency", "dice@translated"} <= set(metrics["aggregates"])


def test_windowed_prediction_covers_the_patch_and_averages_overlaps():
    """A T-trained network predicts in windows of its training size: every voxel is covered and overlapping windows
    are averaged, so a network whose logit is its input gives sigmoid(input) everywhere."""
    config = replace(unet3d.PRESETS["tiny"], augmentation="T", input_size=(16, 24, 24))
    image = torch.randn(1, 1, 16, 24, 24, generator=torch.Generator().manual_seed(7))
    probability = unet3d._windowed_probability(torch.nn.Identity(), image, config=config, device=torch.device("cpu"))
    assert probability.shape == image.shape and torch.isfinite(probability).all()
    torch.testing.assert_close(probability, torch.sigmoid(image), atol=1e-5, rtol=1e-5)
    assert unet3d.window_shape((16, 24, 24), config.translate_fraction) == (14, 18, 18)
