"""Lumbosacral segmentation (Liu et al.): class weights, GAN loss terms, networks, patch augmentation, tiny
training of the three methods, sliding-window prediction on the input grid without ground truth."""

import math
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from baselines.lumbosacral import METHODS
from baselines.lumbosacral import semi_supervised as ss
from baselines.lumbosacral.networks import PairDiscriminator, VolumeGenerator
from baselines.lumbosacral.patches import Augmentation, augmented_patch, crop
from evaluators import formats, tasks
from tests.baselines.ctxr_datasets import build
from tests.conftest import without_ground_truth

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)

torch.set_num_threads(1)
TASK = "lumbosacral-ct"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lumbosacral")
    return build(TASK, root / "train", cases=3, seed=0), build(TASK, root / "test", cases=2, seed=1, test=True)


def test_methods_and_paper_preset():
    assert sorted(o["method"] for _, o in METHODS.values()) == sorted(ss.METHODS)
    paper = ss.PRESETS["paper"]
    assert (paper.spacing, paper.patch, paper.stride, paper.batch_size) == (
        (1.0, 0.5, 0.5), (32, 64, 64), (20, 40, 40), 4)
    assert paper.labelled_cases == 20  # the paper's 20 labelled (+ 54 unlabelled) training cases


def test_median_frequency_class_weights_by_hand():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 2 + [3] * 1)
    # frequencies 6/12, 3/12, 2/12, 1/12; median = 2.5/12
    expected = [2.5 / 6, 2.5 / 3, 2.5 / 2, 2.5 / 1]
    np.testing.assert_allclose(ss.class_weights([labels]).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(ss.class_weights([labels], 0.5).numpy(), np.sqrt(expected), rtol=1e-6)
    np.testing.assert_allclose(ss.class_weights([labels], 0.0).numpy(), np.ones(4), rtol=1e-6)


def test_fake_and_real_losses_follow_the_k_plus_one_formulation():
    logits = torch.tensor([[[0.3]], [[-1.2]], [[2.0]], [[0.1]]]).view(1, 4, 1, 1, 1)
    big_f = sum(math.exp(v) for v in (0.3, -1.2, 2.0, 0.1))
    assert ss._fake_loss(logits).item() == pytest.approx(-math.log(1 / (big_f + 1)), rel=1e-5)
    assert ss._real_loss(logits).item() == pytest.approx(-math.log(big_f / (big_f + 1)), rel=1e-5)


def test_networks_shapes():
    generator = VolumeGenerator(latent_dim=8, patch=(16, 24, 24), base_filters=4, levels=3)
    assert generator(torch.randn(2, 8)).shape == (2, 1, 16, 24, 24)
    with pytest.raises(ValueError, match="divisible"):
        VolumeGenerator(latent_dim=8, patch=(10, 24, 24), base_filters=4, levels=3)
    discriminator = PairDiscriminator(in_channels=5, base_filters=4, levels=2)
    assert discriminator(torch.randn(3, 1, 16, 24, 24), torch.rand(3, 4, 16, 24, 24)).shape == (3,)
    fewshot = ss.segmenter(replace(ss.PRESETS["tiny"], method="fewshot-gan"))
    assert any("parametrizations" in name for name, _ in fewshot.named_parameters())
    assert isinstance(fewshot.downs[0].pool, torch.nn.AvgPool3d)


def test_patch_without_augmentation_is_the_plain_crop():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(20, 30, 30)).astype(np.float32)
    none = Augmentation(noise_std=0, flip_probability=0, voxel_jitter_mm=0, rotation_degrees=0,
                        spacing=(1.0, 0.5, 0.5))
    centre_rng = np.random.default_rng(5)
    centre = tuple(int(centre_rng.integers(n)) for n in image.shape)
    patch, labels = augmented_patch(image, None, patch=(8, 12, 12), augmentation=none, foreground_probability=0,
                                    rng=np.random.default_rng(5))
    assert labels is None
    np.testing.assert_allclose(patch[0, 0].numpy(), crop(image, centre, (8, 12, 12)), atol=1e-5)


def test_intensity_augmentation_is_an_affine_change_of_the_patch():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(20, 30, 30)).astype(np.float32)
    plain = Augmentation(noise_std=0, flip_probability=0, voxel_jitter_mm=0, rotation_degrees=0,
                         spacing=(1.0, 0.5, 0.5))
    shifted = replace(plain, intensity_shift=0.5, intensity_scale=0.2)
    base, _ = augmented_patch(image, None, patch=(8, 12, 12), augmentation=plain, foreground_probability=0,
                              rng=np.random.default_rng(3))
    changed, _ = augmented_patch(image, None, patch=(8, 12, 12), augmentation=shifted, foreground_probability=0,
                                 rng=np.random.default_rng(3))
    scale, offset = np.polyfit(base.numpy().ravel(), changed.numpy().ravel(), 1)
    assert 0.8 <= scale <= 1.2 and abs(offset) <= 0.5 and not np.allclose(base.numpy(), changed.numpy())


def test_crop_replicates_edges():
    volume = np.arange(8).reshape(2, 2, 2)
    out = crop(volume, (0, 0, 0), (2, 2, 2))
    assert out[0, 0, 0] == volume[0, 0, 0] and out[1, 1, 1] == volume[0, 0, 0]


@pytest.mark.parametrize("method", ss.METHODS)
def test_tiny_training_lowers_the_loss_and_predicts_on_the_input_grid(method, data, tmp_path):
    config = replace(ss.PRESETS["tiny"], method=method)
    checkpoint = ss.train(data_dir=data[0], config=config, device="cpu", progress=False)
    losses = checkpoint["losses"]
    assert len(losses) == 16 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    if method != "unet":
        assert len(checkpoint["d_losses"]) == 16 and len(checkpoint["g_losses"]) == 16
    blind = without_ground_truth(data[1], tmp_path / "blind")
    predictions = ss.predict(checkpoint=checkpoint, data_dir=blind, config=config, device="cpu", progress=False)
    for case_id, segmentation in predictions.items():
        reference = sitk.ReadImage(str(data[1] / "inputs" / case_id / "image.nii.gz"))
        assert formats.geometry_mismatch(segmentation, reference) is None
        assert set(np.unique(sitk.GetArrayFromImage(segmentation))) <= {0, 1, 2, 3}
    formats.write_predictions(TASK, predictions, tmp_path / "pred")
    metrics = tasks.evaluate(TASK, predictions=tmp_path / "pred", ground_truth=data[1])
    assert "dice_mean@cross-dataset" in metrics["aggregates"]
