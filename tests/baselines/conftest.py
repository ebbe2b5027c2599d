"""Baseline test fixtures: small AASCE phantom datasets generated once per session, one torch thread.

``aasce_train`` (12 cases) and ``aasce_test`` (6 cases, test domain) are SpineBench dataset folders made by
``phantoms.generate("aasce-cobb", small=True)``; tests must not modify them (copy first).
"""

import pytest
import torch

import phantoms

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def aasce_train(tmp_path_factory):
    out = tmp_path_factory.mktemp("aasce") / "train"
    return phantoms.generate("aasce-cobb", out=out, cases=12, seed=11, small=True, progress=False)


@pytest.fixture(scope="session")
def aasce_test(tmp_path_factory):
    out = tmp_path_factory.mktemp("aasce") / "test"
    return phantoms.generate("aasce-cobb", out=out, cases=6, seed=12, domain="test", small=True, progress=False)
