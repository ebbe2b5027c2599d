"""Protocol settings of the paper presets (issue: the papers' protocols): Erasmus smoothing rescaled with the working
resolution, Bayat's training length in passes over the data, Khanal's single-level detector."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from baselines import api
from baselines.aasce import centreline, detector_corners
from baselines.labelling import residual_corrector
from baselines.nn.detection import SingleLevelBackbone


def test_erasmus_smoothing_keeps_the_papers_diffusion_length_at_the_working_height():
    paper = centreline.PRESETS["paper"]
    # 65000 steps on a 2800-row frame, rescaled to 512 rows by (512 / 2800)²
    assert centreline.euler_steps(paper) == round(65000 * 512**2 / 2800**2) == 2173
    length = math.sqrt(2 * 0.01 * centreline.euler_steps(paper)) / paper.height
    assert abs(length - math.sqrt(2 * 0.01 * 65000) / 2800) < 1e-5  # about 1.3 % of the height, as on the frame
    # the component threshold is the same frame's 40 x 140 pixels
    assert paper.min_component == 40 * 140 / (2800 * 1000)
    # tiny/standard count their steps on their own grid (unchanged behaviour)
    assert centreline.euler_steps(centreline.PRESETS["tiny"]) == 200
    assert centreline.euler_steps(centreline.PRESETS["standard"]) == 800
    # the smoothing itself: the rescaled steps act like a Gaussian of the matching width on a noisy line
    rng = np.random.default_rng(0)
    noisy = np.linspace(0, 50, 400) + rng.normal(0, 2, 400)
    heat = centreline.smooth_curve(noisy, method="heat", coefficient=0.01, iterations=2173)
    gauss = centreline.smooth_curve(noisy, method="gaussian", coefficient=0.01, iterations=2173)
    assert np.abs(heat - gauss)[50:-50].max() < 0.2


def test_bayat_paper_preset_trains_150_passes_over_the_data():
    paper = residual_corrector.PRESETS["paper"]
    assert residual_corrector.training_steps(paper, {"sagittal": 100, "coronal": 100}) == 150 * 25
    assert residual_corrector.training_steps(paper, {"sagittal": 99, "coronal": 50}) == 150 * 25
    assert residual_corrector.training_steps(residual_corrector.PRESETS["standard"], {"coronal": 10}) == 1500
    assert residual_corrector.training_steps(residual_corrector.PRESETS["tiny"], {"coronal": 10}) == 8


def test_khanal_paper_preset_uses_one_feature_level():
    paper = replace(detector_corners.PRESETS["paper"], detector_backbone="compact", detector_size=(128, 64),
                    box_representation=32, proposals=(50, 20), rois_per_image=16)
    model = detector_corners._build_detector(paper)
    assert isinstance(model.backbone, SingleLevelBackbone)
    assert model.rpn.anchor_generator.num_anchors_per_location() == [len(paper.anchor_sizes) * len(paper.aspect_ratios)]
    assert not isinstance(detector_corners._build_detector(detector_corners.PRESETS["tiny"]).backbone,
                          SingleLevelBackbone)


def test_khanal_single_level_detector_trains_and_predicts(aasce_train, aasce_test, tmp_path):
    checkpoint = api.train("aasce-cobb", "detector-corners", preset="tiny", data_dir=aasce_train,
                           out=tmp_path / "m.pt", device="cpu", progress=False,
                           overrides={"feature_pyramid": False})
    path = api.predict("aasce-cobb", "detector-corners", checkpoint=checkpoint, data_dir=aasce_test,
                       out=tmp_path / "p.csv", device="cpu", progress=False)
    angles = pd.read_csv(path)[["pt", "mt", "tl"]].to_numpy(float)
    assert angles.shape == (6, 3) and np.isfinite(angles).all()


def test_iflytek_paper_preset_builds_hrnet_w48_and_simplebaseline_ii_at_the_papers_scale():
    from baselines.aasce import keypoint
    from baselines.nn.hrnet import HRNet

    paper = keypoint.PRESETS["paper"]
    parameters = sum(p.numel() for p in keypoint._hrnet(paper).parameters())
    assert abs(parameters - 63.6e6) / 63.6e6 < 0.05  # HRNet-W48 (Sun et al.): about 63.6 M
    assert paper.sb2_batch == 130 and paper.sb2_steps * paper.sb2_batch >= 70 * 609 * 200 - 130
    # the CPU presets keep their single-module, single-block network (older checkpoints still load)
    standard = keypoint.PRESETS["standard"]
    assert (standard.hrnet_blocks, standard.hrnet_modules, standard.sb2_batch) == (1, (), 0)
    before = HRNet(4, width=12, num_stages=3, stem_stride=2)
    assert [p.shape for p in keypoint._hrnet(standard).parameters()] == [p.shape for p in before.parameters()]
    with pytest.raises(ValueError, match="one count per stage"):
        HRNet(4, width=4, num_stages=3, modules_per_stage=(1, 2))
