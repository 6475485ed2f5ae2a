"""Spiking neuron modules over time-major tensors ``[T, B, ...]``.

Each module is a thin, stateless wrapper around the fused multi-step functions in
``functional.py``: ``forward(x[T, B, ...]) -> spikes[T, B, ...]`` (0/1 in the dtype of ``x``),
starting from rest at every call, so no ``reset()`` is ever needed. ``step(x_t, v)`` runs a single
time step with explicit state for online / streaming use; iterating it gives exactly the spikes
of ``forward`` (tested). Nothing is stored on the module between calls, so modules can be
shared, deep-copied and pickled freely; the only parameter is PLIF's ``w``.

Registered in ``NEURONS`` (``create_neuron(name, **kwargs)``): ``lif``, ``if``, ``plif``.
"""

from __future__ import annotations

import inspect
import math
from typing import Optional

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.core.registry import Registry
from spikesculpt.neurons import functional as F
from spikesculpt.neurons.surrogate import Surrogate, create_surrogate

NEURONS = Registry("neuron")


class SpikingNeuron(nn.Module):
    """Base class: ``forward(x[T, B, ...]) -> spikes[T, B, ...]`` with values in {0, 1}.

    Common attributes: ``v_threshold`` (float), ``v_reset`` (float for a hard reset, None for a
    soft reset by subtraction), ``detach_reset`` (bool), ``surrogate`` (a ``Surrogate``).

    ``config_arguments`` says how a ``NeuronConfig`` (``--tau``, ``--v-threshold``, ...) maps to
    the neuron's ``__init__``: ``{config field: argument}``. A neuron without a leak leaves
    ``tau`` out; one whose time constant is learned calls it ``init_tau``.
    """

    config_arguments = {"v_threshold": "v_threshold", "v_reset": "v_reset",
                        "detach_reset": "detach_reset", "surrogate": "surrogate",
                        "alpha": "alpha"}

    def __init__(self, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 detach_reset: bool = False, surrogate: "str | Surrogate" = "atan",
                 alpha: Optional[float] = None):
        super().__init__()
        self.v_threshold, self.v_reset = F._check_threshold(v_threshold, v_reset)
        self.detach_reset = bool(detach_reset)
        self.surrogate = create_surrogate(surrogate, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, x_t: torch.Tensor, v: Optional[torch.Tensor] = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step with explicit state: ``(x_t[B, ...], v) -> (spike_t, v_next)``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _common(self) -> dict:
        return dict(v_threshold=self.v_threshold, v_reset=self.v_reset,
                    detach_reset=self.detach_reset, surrogate=self.surrogate)

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"v_reset={self.v_reset:g}"
        return (f"v_threshold={self.v_threshold:g}, {reset}, detach_reset={self.detach_reset}, "
                f"surrogate={self.surrogate!r}")


@NEURONS.register("lif")
class LIF(SpikingNeuron):
    """Leaky integrate-and-fire neuron (SpikingJelly's ``LIFNode``, ``decay_input=True``).

    ``H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau``, ``S[t] = Θ(H[t] - V_th)``, hard reset
    ``V[t] = H[t]·(1 - S[t]) + V_reset·S[t]`` or (``v_reset=None``) soft reset
    ``V[t] = H[t] - V_th·S[t]``; ``V[-1] = V_reset`` (0 for a soft reset). ``tau`` is in time steps
    (>= 1). Reference: Fang et al. 2023 (Science Advances, SpikingJelly).

    Args:
        tau: membrane time constant in time steps.
        v_threshold: firing threshold.
        v_reset: hard-reset potential, or None for a soft reset (subtract the threshold).
        detach_reset: no gradient through the reset (the S inside the reset is a constant).
        surrogate: registered surrogate name (``atan``, ``sigmoid``, ``triangle``, ...) or instance.
        alpha: surrogate width (None = the surrogate's default).
    """

    config_arguments = {**SpikingNeuron.config_arguments, "tau": "tau"}

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 detach_reset: bool = False, surrogate: "str | Surrogate" = "atan",
                 alpha: Optional[float] = None):
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, alpha)
        F._decay(tau, None)  # validates
        self.tau = float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F._multistep(x, 1.0 / self.tau, self.v_threshold, self.v_reset,
                            self.detach_reset, self.surrogate)

    def step(self, x_t, v=None):
        return F.lif_step(x_t, v, tau=self.tau, **self._common())

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, " + super().extra_repr()


@NEURONS.register("if")
class IF(SpikingNeuron):
    """Integrate-and-fire neuron (no leak): ``H[t] = V[t-1] + X[t]``, then fire and reset as LIF."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F._multistep(x, None, self.v_threshold, self.v_reset, self.detach_reset,
                            self.surrogate)

    def step(self, x_t, v=None):
        return F.if_step(x_t, v, **self._common())


@NEURONS.register("plif")
class ParametricLIF(SpikingNeuron):
    """LIF with a learnable membrane time constant (PLIF; Fang et al. 2021, ICCV, "Incorporating
    Learnable Membrane Time Constant to Enhance Learning of Spiking Neural Networks").

    ``1/tau = sigmoid(w)`` with one scalar ``w`` per layer, initialised to
    ``w = -log(init_tau - 1)`` so that tau starts at ``init_tau`` (> 1); the dynamics are LIF's
    with ``1/tau`` replaced by ``sigmoid(w)``, and the gradient reaches ``w`` through the charge
    ``H = V + (X - (V - V_reset))·sigmoid(w)``. Same arguments as ``LIF`` except ``init_tau``.
    """

    config_arguments = {**SpikingNeuron.config_arguments, "tau": "init_tau"}

    def __init__(self, init_tau: float = 2.0, v_threshold: float = 1.0,
                 v_reset: Optional[float] = 0.0, detach_reset: bool = False,
                 surrogate: "str | Surrogate" = "atan", alpha: Optional[float] = None):
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, alpha)
        init_tau = float(init_tau)
        if not (init_tau > 1.0 and math.isfinite(init_tau)):
            raise UserError(f"plif: init_tau must be > 1 time step, got {init_tau}")
        self.init_tau = init_tau
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    @property
    def decay(self) -> torch.Tensor:
        """1/tau = sigmoid(w), a 0-dim tensor (differentiable)."""
        return torch.sigmoid(self.w)

    @property
    def tau(self) -> float:
        """Current membrane time constant in time steps (a float, for reporting / export)."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F._multistep(x, self.decay, self.v_threshold, self.v_reset, self.detach_reset,
                            self.surrogate)

    def step(self, x_t, v=None):
        return F.lif_step(x_t, v, tau=None, decay=self.decay, **self._common())

    def extra_repr(self) -> str:
        return f"init_tau={self.init_tau:g}, tau={self.tau:.4g}, " + super().extra_repr()


def create_neuron(name: str, **kwargs) -> SpikingNeuron:
    """Build the registered neuron ``name`` (``lif``, ``if``, ``plif``) with ``kwargs``."""
    cls = NEURONS.get(name)
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(kwargs) - set(params) - {"self"})
    if unknown:
        valid = ", ".join(p for p in params if p != "self")
        raise UserError(f"neuron {name!r} has no argument {', '.join(unknown)}; "
                        f"its arguments are: {valid}")
    return cls(**kwargs)
