"""Conditioned VAE fracture classification (Husseini et al.) and its comparison models: patches, weights,
conditioning, training, prediction and the saliency figure on a small fracture-ct dataset."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

import phantoms
from baselines.fracture import vae
from baselines.fracture.common import GROUPS, read_case, vertebra_group
from tests.conftest import without_ground_truth

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)

TINY = vae.PRESETS["tiny"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return phantoms.generate("fracture-ct", out=tmp_path_factory.mktemp("fracture") / "train", cases=4, seed=5,
                             small=True, progress=False)


@pytest.fixture(scope="module")
def checkpoints(dataset):
    torch.set_num_threads(1)
    return {
        model: vae.train(data_dir=dataset, config=replace(TINY, model=model), device="cpu", progress=False)
        for model in ("conditioned-vae", "encoder")
    }


def test_vertebra_groups():
    assert [vertebra_group(n) for n in ("T1", "T5", "T6", "T9", "T10", "T12", "L1", "L4", "L5")] == [
        0, 0, 1, 1, 2, 2, 3, 3, 4
    ]
    assert GROUPS[vertebra_group("T7")] == "T6-T9"


def test_patches_are_masked_vertebrae_centred_on_the_centroid(dataset):
    case = read_case(dataset, "case_0001")
    names, images, masks = vae.extract_patches(case, TINY)
    assert names == list(case.centroids)
    assert images.shape == (len(names), 16, 16, 16)
    assert np.all(images[masks == 0] == 0)  # only the vertebra's own voxels survive the masking
    assert (images[masks > 0] > 0).mean() > 0.8  # bone, in HU / 1000
    for mask in masks:  # each vertebra's mask is centred in its box (the centroid comes from the label map)
        centre = np.argwhere(mask > 0).mean(axis=0)
        assert mask.sum() > 0 and np.abs(centre - 7.5).max() < 1.5


def test_body_weights_fall_from_anterior_body_to_process_end():
    masks = torch.zeros(1, 1, 4, 10, 4)
    masks[0, 0, 1:3, 2:7, 1:3] = 1  # AP extent y = 2 .. 6
    weights = vae.body_weights(masks)[0, 0]
    assert weights.shape == (4, 10, 4)
    assert weights[0, :, 0].tolist() == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0])
    assert torch.equal(weights[0], weights[3])  # constant across z and x
    assert torch.all(vae.body_weights(torch.zeros(1, 1, 4, 10, 4)) == 1)


def test_median_frequency_weights():
    weights = vae.median_frequency_weights(torch.tensor([0, 0, 0, 1]))
    # frequencies 0.75 and 0.25, median 0.5
    assert weights.tolist() == pytest.approx([2 / 3, 2.0])


def test_sagittal_rotation_keeps_each_sagittal_slice_in_place():
    images = torch.zeros(2, 1, 9, 9, 9)
    images[:, :, :, :, 2] = 1.0  # a full sagittal slice at x = 2
    masks = images.clone()
    rotated, rotated_masks = vae.rotate_sagittal(images, masks, max_deg=30, generator=torch.Generator().manual_seed(0))
    assert rotated[:, :, :, :, [0, 1, 3, 4, 5, 6, 7, 8]].abs().max() == 0  # nothing leaves its slice
    assert rotated[:, :, 4, 4, 2].min() == pytest.approx(1.0)  # the centre stays
    point = torch.zeros(1, 1, 9, 9, 9)
    point[0, 0, 8, 4, 4] = 1.0  # a superior voxel on the z axis, in the sagittal slice x = 4
    moved, _ = vae.rotate_sagittal(point, point.clone(), max_deg=30, generator=torch.Generator().manual_seed(1))
    assert moved[0, 0, :, :, 4].sum() > 0.5 and moved[0, 0, :, :, [3, 5]].abs().sum() == 0


def test_models_differ_as_the_paper_says():
    conditioned, plain = vae.SpineVAE(replace(TINY, model="conditioned-vae")), vae.SpineVAE(replace(TINY, model="vae"))
    assert conditioned.decoder[0].in_features == TINY.latent + len(GROUPS)
    assert plain.decoder[0].in_features == TINY.latent
    assert conditioned.log_var is not None and plain.log_var is not None
    assert vae.SpineVAE(replace(TINY, model="autoencoder")).log_var is None
    encoder = vae.SpineVAE(replace(TINY, model="encoder"))
    assert encoder.decoder is None and encoder.log_var is None
    assert replace(TINY, model="conditioned-vae").body_weighted and not replace(TINY, model="vae").body_weighted


def test_phase_schedule():
    config = replace(TINY, recon_epochs=2, kl_epochs=4, classifier_epochs=2, kl_anneal_epochs=2, beta=0.1)
    schedule = [vae.phase_weights(epoch, config) for epoch in range(config.epochs)]
    assert [kl for _, kl, _ in schedule] == pytest.approx([0, 0, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert [on for _, _, on in schedule] == [False] * 6 + [True] * 2
    assert vae.phase_weights(0, replace(config, model="autoencoder"))[1] == 0.0
    assert vae.phase_weights(0, replace(config, model="encoder")) == (0.0, 0.0, True)


def test_tiny_training_lowers_the_losses(checkpoints):
    recon = checkpoints["conditioned-vae"]["recon"]
    assert len(recon) == TINY.epochs and recon[TINY.recon_epochs - 1] < recon[0]
    ce = checkpoints["encoder"]["ce"]
    assert np.mean(ce[-2:]) < ce[0]


def test_predictions_have_the_task_format_without_ground_truth(dataset, checkpoints, tmp_path):
    blind = without_ground_truth(dataset, tmp_path / "blind")
    config = replace(TINY, model="conditioned-vae")
    predictions = vae.predict(checkpoint=checkpoints["conditioned-vae"], data_dir=blind, config=config,
                              device="cpu", progress=False)
    assert sorted(predictions) == sorted(p.name for p in (dataset / "inputs").iterdir())
    for case_id, prediction in predictions.items():
        centroids = json.loads((blind / "inputs" / case_id / "centroids.json").read_text())
        assert set(prediction["vertebrae"]) == set(centroids)
        assert all(0.0 <= p <= 1.0 for p in prediction["vertebrae"].values())
        assert prediction["patient"] == pytest.approx(max(prediction["vertebrae"].values()))


def test_saliency_figure(dataset, checkpoints, tmp_path):
    config = replace(TINY, model="conditioned-vae")
    patches = vae.load_patches(dataset, ["case_0002"], config)
    maps = vae.saliency(vae.load_model(checkpoints["conditioned-vae"], config, "cpu"), patches.images)
    assert maps.shape == patches.images.shape and maps.sum() > 0
    out = vae.saliency_figure(checkpoint=checkpoints["conditioned-vae"], config=config, patches=patches,
                              out=tmp_path / "saliency.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_checks_patch_against_depth():
    with pytest.raises(ValueError, match="patch"):
        vae.Config(patch=40)  # 40 / 2**4 is not whole
    with pytest.raises(ValueError, match="model"):
        vae.Config(model="gan")


def test_every_registered_fracture_method_builds_its_variant():
    """Each registered variant's tiny config builds a network of its own: the override reaches the model (the
    encoder-classifier has no decoder, only the variational ones a log-variance head, each dual-pathway variant its
    own kernels), so no two variants of one module build the same architecture."""
    from baselines import api
    from baselines.fracture import METHODS, dual_pathway

    def build(module, config):
        return dual_pathway.build_model(config) if module is dual_pathway else vae.SpineVAE(config)

    architectures = {}
    for name, (module_path, overrides) in METHODS.items():
        module = vae if module_path.endswith(".vae") else dual_pathway
        model = build(module, api.build_config(module, "tiny", overrides))
        architectures[name] = (module_path, str(model))
        if module is vae:
            assert (model.decoder is None) == (overrides["model"] == "encoder"), name
            assert (model.log_var is not None) == (overrides["model"] in ("vae", "conditioned-vae")), name
    for module_path in {path for path, _ in architectures.values()}:
        built = [text for path, text in architectures.values() if path == module_path]
        assert len(set(built)) == len(built), module_path


def test_api_round_trip_is_scored_by_the_evaluator(dataset, tmp_path):
    from baselines import api
    from evaluators import tasks

    checkpoint = api.train("fracture-ct", "encoder-classifier", preset="tiny", data_dir=dataset,
                           out=tmp_path / "model.pt", device="cpu", progress=False)
    predictions = api.predict("fracture-ct", "encoder-classifier", checkpoint=checkpoint, data_dir=dataset,
                              out=tmp_path / "predictions", device="cpu", progress=False)
    metrics = tasks.evaluate("fracture-ct", predictions=predictions, ground_truth=dataset)
    # the aggregate is the AUC of the written probabilities against the ground-truth grades, recomputed here
    rows = pd.read_csv(dataset / "ground_truth" / "vertebrae.csv")
    probabilities = [
        json.loads((predictions / case / "fractures.json").read_text())["vertebrae"][vertebra]
        for case, vertebra in zip(rows["case_id"], rows["vertebra"], strict=True)
    ]
    labels = (rows["grade"] >= 1).astype(int)
    assert labels.nunique() == 2  # both classes present, so the AUC is defined
    assert metrics["aggregates"]["auc_vertebra"] == pytest.approx(roc_auc_score(labels, probabilities))
    assert set(metrics["case"]) == {p.name for p in (dataset / "inputs").iterdir()}
