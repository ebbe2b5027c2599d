"""Gradient reversal (Ganin & Lempitsky 2015), as used by Seg4Reg's domain adaptation (Sect. 2.2).

``grad_reverse(x, weight)`` is the identity forward and multiplies the gradient by ``-weight`` backward.
``GradientReversal(weight)`` wraps it as a module; ``DomainDiscriminator(in_features, hidden=64)`` is the small
branch (GRL → Linear → ReLU → Linear → one logit: source vs target domain) trained with a binary cross-entropy
``L_d`` added to the task loss (``L = L_y + λ L_d``; λ = 1 in Seg4Reg).
"""

from __future__ import annotations

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.weight * grad_output, None


def grad_reverse(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    return _ReverseGradient.apply(x, float(weight))


class GradientReversal(nn.Module):
    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.weight)


class DomainDiscriminator(nn.Module):
    def __init__(self, in_features: int, *, hidden: int = 64, weight: float = 1.0):
        super().__init__()
        self.net = nn.Sequential(
            GradientReversal(weight), nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)
