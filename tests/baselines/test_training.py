"""The one training scaffold (baselines.nn.training): same seed, same losses; the loop's step counts and clipping;
the device rule."""

import numpy as np
import pytest
import torch

from baselines import api
from baselines.nn.training import fit, optimise, resolve_device, run_steps, seed_everything


def _regression_run(seed: int) -> list[float]:
    rng = seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    x = rng.normal(size=(10, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)

    def jitter(batch, rng):
        return {"x": batch["x"] + rng.normal(0, 0.01, batch["x"].shape).astype(np.float32), "y": batch["y"]}

    return fit(model.parameters(), arrays={"x": x, "y": y},
               loss_fn=lambda b: torch.nn.functional.mse_loss(model(b["x"]), b["y"]), epochs=4, batch_size=4,
               optimiser=torch.optim.Adam(model.parameters(), lr=1e-2), device=torch.device("cpu"), rng=rng,
               augment=jitter, progress=False)


def test_same_seed_same_losses_and_another_seed_differs():
    first, second = _regression_run(3), _regression_run(3)
    assert len(first) == 4 * 3  # 10 cases in batches of 4: 3 steps per epoch
    assert first == second
    assert _regression_run(4) != first
    assert torch.are_deterministic_algorithms_enabled()


def test_run_steps_clips_the_gradient_norm():
    weight = torch.nn.Parameter(torch.tensor([0.0]))
    optimiser = torch.optim.SGD([weight], lr=1.0)
    # d/dw of 100 * w is 100; clipped to norm 1 the step moves w by exactly -1 per step
    losses = run_steps(lambda step: 100 * weight.sum(), optimiser, steps=3, device=torch.device("cpu"), progress=False,
                       desc="t", clip_norm=1.0, parameters=[weight])
    assert losses == [0.0, -100.0, -200.0]
    assert weight.item() == pytest.approx(-3.0)


def test_optimise_counts_steps_and_rejects_unknown_optimisers():
    weight = torch.nn.Parameter(torch.tensor([2.0]))
    losses = optimise(lambda step: (weight**2).sum(), [weight], steps=5, lr=0.1, device=torch.device("cpu"),
                      progress=False, desc="t", optimizer="sgd", momentum=0.0)
    # plain gradient descent on w²: w <- w (1 - 2 lr) = 0.8 w
    np.testing.assert_allclose(losses, [4.0 * 0.64**k for k in range(5)], rtol=1e-6)
    with pytest.raises(ValueError, match="'adam' or 'sgd'"):
        optimise(lambda step: weight.sum(), [weight], steps=1, lr=0.1, device=torch.device("cpu"), progress=False,
                 desc="t", optimizer="lion")


def test_resolve_device_rule():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == resolve_device("auto")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("method", ["top-down", "multi-task"])
def test_two_tiny_trainings_with_the_same_seed_give_identical_losses(method, aasce_train, tmp_path):
    """One method of each former scaffold (methods 1-4: step budget; 5-9: epochs of mini-batches)."""
    runs = []
    for name in ("a", "b"):
        checkpoint = api.train("aasce-cobb", method, preset="tiny", data_dir=aasce_train, out=tmp_path / f"{name}.pt",
                               device="cpu", progress=False)
        runs.append(torch.load(checkpoint, weights_only=True))
    assert [float(v) for v in runs[0]["losses"]] == [float(v) for v in runs[1]["losses"]]
    assert runs[0]["state"].keys() == runs[1]["state"].keys()
    for key, value in runs[0]["state"].items():
        assert torch.equal(value, runs[1]["state"][key]), key
