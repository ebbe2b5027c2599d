"""baselines.registry, baselines.api and baselines.cli: method resolution, presets and overrides, checkpoints,
device choice and the command line (list/train/predict with one-line errors)."""

import dataclasses

import pytest
import torch

from baselines import api, cli
from baselines.aasce import seg4reg
from baselines.data import Augmentation
from baselines.registry import METHODS, UnknownMethodError, get_method


def test_registry_lists_every_family_under_its_task():
    assert set(METHODS) == {
        "aasce-cobb",
        "fracture-ct",
        "metastatic-body-ct",
        "vertebra-labelling-xr",
        "lumbosacral-ct",
    }
    assert len(METHODS["aasce-cobb"]) == 9
    spec = get_method("fracture-ct", "dual-pathway-1slice")
    assert spec.module == "baselines.fracture.dual_pathway" and spec.overrides == {"variant": "1slice"}
    with pytest.raises(UnknownMethodError, match="has no baseline method 'nope'; available: centreline-cascade"):
        get_method("aasce-cobb", "nope")
    with pytest.raises(UnknownMethodError, match="no baselines for task 'x'"):
        get_method("x", "seg4reg")


def test_method_modules_follow_the_contract():
    for name in ("detector-corners", "top-down", "seg4reg", "keypoint-fusion"):
        module = get_method("aasce-cobb", name).load()
        assert set(module.PRESETS) == {"tiny", "standard", "paper"}
        assert all(isinstance(config, module.Config) for config in module.PRESETS.values())


def test_build_config_applies_overrides_and_rejects_unknown_settings():
    config = api.build_config(seg4reg, "tiny", {"reg_input": "image+mask", "domain_adaptation": False})
    assert config.reg_input == "image+mask" and not config.domain_adaptation
    assert config.seg_size == seg4reg.PRESETS["tiny"].seg_size
    with pytest.raises(ValueError, match="has no setting"):
        api.build_config(seg4reg, "tiny", {"dropout": 0.5})
    with pytest.raises(ValueError, match="has no preset 'huge'"):
        api.build_config(seg4reg, "huge")


def test_config_round_trip_rebuilds_nested_dataclasses():
    config = dataclasses.replace(
        seg4reg.PRESETS["standard"], augmentation=Augmentation(rotation_degrees=5.0, scale_range=(0.8, 1.2))
    )
    rebuilt = api.config_from_dict(seg4reg.Config, dataclasses.asdict(config))
    assert rebuilt == config and isinstance(rebuilt.augmentation, Augmentation)
    with pytest.raises(api.CheckpointError, match="unknown setting"):
        api.config_from_dict(seg4reg.Config, {"bogus": 1})


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert api.resolve_device("auto").type == expected
    assert api.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            api.resolve_device("cuda")


@pytest.mark.slow  # trains a tiny baseline through the command line
def test_cli_train_predict_and_errors(aasce_train, aasce_test, tmp_path, capsys):
    checkpoint = tmp_path / "model.pt"
    assert (
        cli.main(
            [
                "train",
                "aasce-cobb",
                "detector-corners",
                "--preset",
                "tiny",
                "--data",
                str(aasce_train),
                "--out",
                str(checkpoint),
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )
    assert checkpoint.is_file()
    out = tmp_path / "pred.csv"
    assert (
        cli.main(
            [
                "predict",
                "aasce-cobb",
                "detector-corners",
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(aasce_test),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )
    assert out.read_text().startswith("case_id,pt,mt,tl")
    capsys.readouterr()
    assert (
        cli.main(
            [
                "predict",
                "aasce-cobb",
                "top-down",
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(aasce_test),
                "--out",
                str(tmp_path / "x.csv"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "checkpoint is for method 'detector-corners', not 'top-down'" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert (
        cli.main(
            [
                "predict",
                "aasce-cobb",
                "top-down",
                "--checkpoint",
                str(tmp_path / "junk.pt"),
                "--data",
                str(aasce_test),
                "--out",
                str(tmp_path / "x.csv"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "not a readable baseline checkpoint" in capsys.readouterr().err
    assert cli.main(["list", "--task", "aasce-cobb"]) == 0
    listing = capsys.readouterr().out
    assert "aasce-cobb\tseg4reg\tbaselines.aasce.seg4reg" in listing and listing.count("\n") == 9


def test_register_returns_the_baselines_subparsers():
    import argparse

    parser = argparse.ArgumentParser()
    commands = cli.register(parser.add_subparsers(dest="command"))
    commands.add_parser("run").set_defaults(func=lambda args: 7)
    args = parser.parse_args(["baselines", "run"])
    assert args.func(args) == 7
    args = parser.parse_args(["baselines", "train", "aasce-cobb", "seg4reg", "--data", "d", "--out", "o"])
    assert args.preset == "standard" and args.device == "auto"
