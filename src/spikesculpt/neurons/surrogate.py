"""Surrogate gradients: Heaviside forward, smooth derivative backward.

A spiking neuron emits ``S = Θ(x)`` with ``x = H - V_threshold`` (membrane potential before the
spike minus the threshold, in the units of the membrane potential) and ``Θ(x) = 1`` for ``x >= 0``,
else ``0``. Θ has zero derivative almost everywhere, so training uses a *surrogate gradient*
(Neftci, Mostafa & Zenke 2019): the forward pass keeps Θ, the backward pass uses ``g'(x)``, the
derivative of a smooth primitive ``g(x) ≈ Θ(x)`` with a width parameter ``alpha`` (larger alpha =
sharper g, taller and narrower g'). Every g' below integrates to 1 over the real line (g goes from
0 to 1), and every g' is an even function.

Each surrogate exposes

- ``primitive(x)``: the smooth function g(x) (used by tests and plots, never in training),
- ``grad(x)``: its derivative g'(x), out of place (differentiable, works under ``torch.func``),
- ``grad_(x, scale=1.0)``: ``scale * g'(x)`` computed *in place* in ``x`` with as few passes over
  memory as possible; the PyTorch-ops fused kernel (``functional.py``) calls this one.

A custom surrogate subclasses ``Surrogate`` and defines ``primitive`` and ``grad`` (``grad_``
then defaults to ``x.copy_(scale * grad(x))``); set ``even = False`` if g' is not symmetric.
Only the built-in ones run in the native C kernel; custom ones use the PyTorch path.

Registered surrogates (``SURROGATES``; ``create_surrogate(name, alpha=None)``):

============ =========================== ============= ===========================================
name         g'(x)                       default alpha reference
============ =========================== ============= ===========================================
atan         (α/2) / (1 + (π/2·α·x)²)    2.0           SpikingJelly's default ``surrogate.ATan``
                                                       (Fang et al. 2021 ICCV; 2023 Sci. Adv.)
sigmoid      α·σ(αx)·(1 − σ(αx))         4.0           SpikingJelly's ``surrogate.Sigmoid``
triangle     max(0, α − α²·|x|)          1.0           Esser et al. 2016 (PNAS); Bellec et al. 2018
fast_sigmoid (α/2) / (1 + α|x|)²         10.0          SuperSpike (Zenke & Ganguli 2018)
============ =========================== ============= ===========================================

(The fast-sigmoid derivative is normalised here to integrate to 1; snnTorch's ``fast_sigmoid``
uses ``1/(1+k|x|)²`` without the α/2 factor.)
"""

from __future__ import annotations

import math

import torch

from spikesculpt.core.errors import UserError
from spikesculpt.core.registry import Registry

SURROGATES = Registry("surrogate")


class Surrogate:
    """Base class. Subclasses set ``name`` and ``default_alpha`` and implement ``primitive`` and
    ``grad`` (and optionally a faster in-place ``grad_``)."""

    name = ""
    default_alpha = 1.0
    #: g'(-x) == g'(x): lets the PyTorch-ops kernel evaluate g' at V_th - H (one op cheaper)
    even = True

    def __init__(self, alpha: float | None = None):
        alpha = float(self.default_alpha if alpha is None else alpha)
        if not (alpha > 0 and math.isfinite(alpha)):
            raise UserError(f"surrogate {self.name!r}: alpha must be a positive number, "
                            f"got {alpha}")
        self.alpha = alpha

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """The smooth step g(x), rising from 0 to 1 around x = 0."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """g'(x) as a new tensor (out-of-place ops only)."""
        raise NotImplementedError

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Overwrite ``x`` with ``scale * g'(x)`` and return it."""
        return x.copy_(self.grad(x) * scale)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``spike(x, self)``: Θ(x) forward, g'(x) backward."""
        return spike(x, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha:g})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.alpha == other.alpha

    def __hash__(self) -> int:
        return hash((type(self), self.alpha))


@SURROGATES.register("atan")
class ATan(Surrogate):
    """g(x) = 1/2 + arctan(π/2·α·x)/π;  g'(x) = (α/2) / (1 + (π/2·α·x)²).

    SpikingJelly's default surrogate (``surrogate.ATan``, α = 2); peak g'(0) = α/2.
    """

    name = "atan"
    default_alpha = 2.0

    def primitive(self, x):
        return 0.5 + torch.atan(math.pi / 2 * self.alpha * x) / math.pi

    def grad(self, x):
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    def grad_(self, x, scale=1.0):
        # (α/2) / (1 + k²x²) = (α/(2k²)) / (1/k² + x²),  k = πα/2: three passes over x.
        k2 = (math.pi / 2 * self.alpha) ** 2
        x.mul_(x).add_(1.0 / k2)
        return torch.div(torch.tensor(scale * self.alpha / (2 * k2), dtype=x.dtype), x, out=x)


@SURROGATES.register("sigmoid")
class Sigmoid(Surrogate):
    """g(x) = σ(αx);  g'(x) = α·σ(αx)·(1 − σ(αx)) = (α/4)·(1 − tanh²(αx/2)).

    SpikingJelly's ``surrogate.Sigmoid`` (α = 4); peak g'(0) = α/4.
    """

    name = "sigmoid"
    default_alpha = 4.0

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)

    def grad(self, x):
        z = torch.sigmoid(self.alpha * x)
        return self.alpha * z * (1 - z)

    def grad_(self, x, scale=1.0):
        c = scale * self.alpha / 4
        x.mul_(0.5 * self.alpha).tanh_()
        # c·(1 − t²) = c − c·t²
        return x.mul_(x).mul_(-c).add_(c)


@SURROGATES.register("triangle")
class Triangle(Surrogate):
    """g'(x) = max(0, α − α²·|x|): a triangle of height α and half-width 1/α.

    The piecewise-linear pseudo-derivative of Esser et al. 2016 (PNAS, "Convolutional networks
    for fast, energy-efficient neuromorphic computing") and Bellec et al. 2018 (NeurIPS, LSNN:
    γ·max(0, 1 − |x|)); g is the matching piecewise quadratic.
    """

    name = "triangle"
    default_alpha = 1.0

    def primitive(self, x):
        ax = (self.alpha * x).clamp(-1.0, 1.0)
        return torch.where(ax < 0, 0.5 * (1 + ax) ** 2, 1 - 0.5 * (1 - ax) ** 2)

    def grad(self, x):
        return torch.clamp(self.alpha - self.alpha ** 2 * x.abs(), min=0)

    def grad_(self, x, scale=1.0):
        a = self.alpha
        return x.abs_().mul_(-scale * a * a).add_(scale * a).clamp_min_(0.0)


@SURROGATES.register("fast_sigmoid")
class FastSigmoid(Surrogate):
    """g(x) = 1/2 + (αx/2) / (1 + α|x|);  g'(x) = (α/2) / (1 + α|x|)².

    The SuperSpike surrogate (Zenke & Ganguli 2018, Neural Computation), normalised to integrate
    to 1; peak g'(0) = α/2.
    """

    name = "fast_sigmoid"
    default_alpha = 10.0

    def primitive(self, x):
        ax = self.alpha * x
        return 0.5 + 0.5 * ax / (1 + ax.abs())

    def grad(self, x):
        return (self.alpha / 2) / (1 + self.alpha * x.abs()) ** 2

    def grad_(self, x, scale=1.0):
        a = self.alpha
        # (α/2)/(1 + α|x|)² = (1/(2α)) / (1/α + |x|)²
        x.abs_().add_(1.0 / a)
        x.mul_(x)
        return torch.div(torch.tensor(scale / (2 * a), dtype=x.dtype), x, out=x)


def create_surrogate(name: "str | Surrogate", alpha: float | None = None) -> Surrogate:
    """The registered surrogate ``name`` with width ``alpha`` (None = its default).

    A ``Surrogate`` instance is returned as is (``alpha`` must then be None).
    """
    if isinstance(name, Surrogate):
        if alpha is not None and float(alpha) != name.alpha:
            raise UserError("pass either a Surrogate instance or alpha, not both")
        return name
    return SURROGATES.get(name)(alpha)


class _Spike(torch.autograd.Function):
    """Θ(x) forward, ``surrogate.grad(x)`` backward. Purely functional (vmap-able)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, surrogate):
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, surrogate = inputs
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


def spike(x: torch.Tensor, surrogate: "Surrogate | str" = "atan") -> torch.Tensor:
    """Heaviside spike with a surrogate gradient.

    Forward: ``Θ(x)`` (1 where ``x >= 0``, else 0), same dtype and shape as ``x``.
    Backward: ``grad_out * surrogate.grad(x)``.
    """
    if not isinstance(surrogate, Surrogate):
        surrogate = create_surrogate(surrogate)
    return _Spike.apply(x, surrogate)
