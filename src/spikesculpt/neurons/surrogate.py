"""Surrogate gradients: Heaviside forward, smooth derivative backward.

Each surrogate is a smooth primitive g(x) ~ Θ(x) with a width parameter ``alpha`` (larger alpha =
sharper); the spike function is Θ(x) in the forward pass and g'(x) in the backward pass, with
x = H - V_threshold (membrane potential minus threshold).

PLACEHOLDER reference implementation; see the neurons issue for the fused version.
"""

from __future__ import annotations

import math

import torch

from spikesculpt.registry import Registry

SURROGATES = Registry("surrogate")


class Surrogate:
    name = ""
    default_alpha = 1.0

    def __init__(self, alpha: float | None = None):
        self.alpha = float(self.default_alpha if alpha is None else alpha)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@SURROGATES.register("atan")
class ATan(Surrogate):
    """g(x) = 1/2 + arctan(π/2·α·x)/π;  g'(x) = α/2 / (1 + (π/2·α·x)²). SpikingJelly's default, α=2."""

    name = "atan"
    default_alpha = 2.0

    def primitive(self, x):
        return 0.5 + torch.atan(math.pi / 2 * self.alpha * x) / math.pi

    def grad(self, x):
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)


@SURROGATES.register("sigmoid")
class Sigmoid(Surrogate):
    """g(x) = σ(αx);  g'(x) = α σ(αx)(1 − σ(αx)). α=4 (SpikingJelly's default)."""

    name = "sigmoid"
    default_alpha = 4.0

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)

    def grad(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)


@SURROGATES.register("triangle")
class Triangle(Surrogate):
    """g'(x) = max(0, α − α²|x|) (a triangle of height α and half-width 1/α); α=1."""

    name = "triangle"
    default_alpha = 1.0

    def primitive(self, x):
        a = self.alpha
        ax = a * x
        return torch.where(
            ax <= -1, torch.zeros_like(x),
            torch.where(ax >= 1, torch.ones_like(x),
                        torch.where(ax < 0, 0.5 * (1 + ax) ** 2, 1 - 0.5 * (1 - ax) ** 2)),
        )

    def grad(self, x):
        return torch.clamp(self.alpha - self.alpha ** 2 * x.abs(), min=0)


def create_surrogate(name: str, alpha: float | None = None) -> Surrogate:
    return SURROGATES.get(name)(alpha)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Θ(x) forward (1 where x >= 0), ``surrogate.grad(x)`` backward."""
    return _Spike.apply(x, surrogate)
