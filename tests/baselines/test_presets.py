"""Preset validation (baselines.presets) and the printed summary of a preset (`baselines preset`)."""

import dataclasses
from dataclasses import dataclass, field

import pytest

from baselines import api, cli
from baselines.presets import PresetError, summarise, validate_config
from baselines.registry import METHODS


@dataclass
class Inner:
    rotation_degrees: float = 10.0


@dataclass
class Example:
    seed: int = 0
    image_size: tuple[int, int] = (64, 32)
    angles: tuple[float, ...] = (-0.3, 0.0, 0.3)
    lr: float = 1e-3
    backbone: str = "resnet18"
    target: str | None = None
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": "0"}, "Example.seed: expected int, got str '0'"),
        ({"seed": True}, "Example.seed: expected int, got bool True"),
        ({"lr": -1e-3}, "Example.lr: must not be negative, got -0.001"),
        ({"image_size": (64, 0)}, "Example.image_size: a size or count must be positive, got (64, 0)"),
        ({"image_size": (64, 32, 3)}, "Example.image_size: expected tuple[int, int]"),
        ({"angles": [0.1]}, "Example.angles: expected tuple[float, ...]"),
        ({"target": 3}, "Example.target: expected str | None, got int 3"),
        ({"inner": Inner(rotation_degrees="a lot")}, "Example.inner.rotation_degrees: expected float, got str 'a lot'"),
    ],
)
def test_validate_config_names_the_setting(changes, message):
    validate_config(Example())  # the defaults are valid, so each refusal below is caused by its one change
    with pytest.raises(PresetError) as error:
        validate_config(dataclasses.replace(Example(), **changes))
    assert str(error.value).startswith(message)


def test_every_registered_preset_is_valid():
    checked = 0
    for methods in METHODS.values():
        for spec in methods.values():
            module = spec.load()
            for preset in module.PRESETS:
                validate_config(api.build_config(module, preset, spec.overrides))
                checked += 1
    assert checked >= 3 * sum(len(methods) for methods in METHODS.values())


def test_build_config_refuses_a_bad_override():
    spec = METHODS["aasce-cobb"]["seg4reg"]
    with pytest.raises(
        PresetError, match=r"baselines\.aasce\.seg4reg\.Config\.seg_batch: a size or count must be positive"
    ):
        api.build_config(spec.load(), "tiny", {"seg_batch": 0})


def test_preset_command_prints_every_setting(capsys):
    assert cli.main(["preset", "aasce-cobb", "seg4reg", "tiny"]) == 0
    out = capsys.readouterr().out.splitlines()
    config = api.build_config(METHODS["aasce-cobb"]["seg4reg"].load(), "tiny", {})
    assert out[0] == "aasce-cobb seg4reg: preset tiny of baselines.aasce.seg4reg"
    assert out[1:] == summarise(config, indent="  ")
    assert f"  seg_steps = {config.seg_steps!r}" in out and "    rotation_degrees = 45.0" in out


def test_preset_command_refuses_an_unknown_preset(capsys):
    assert cli.main(["preset", "aasce-cobb", "seg4reg", "huge"]) == 2
    assert "has no preset 'huge'" in capsys.readouterr().err
