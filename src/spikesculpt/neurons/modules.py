"""Spiking neuron modules over time-major tensors ``[T, B, ...]``.

PLACEHOLDER reference implementation (python loop); see the neurons issue for the fused version.
"""

from __future__ import annotations

import torch
from torch import nn

from spikesculpt.neurons.surrogate import create_surrogate, spike
from spikesculpt.registry import Registry

NEURONS = Registry("neuron")


class SpikingNeuron(nn.Module):
    """Base class: ``forward(x[T, B, ...]) -> spikes[T, B, ...]`` (values in {0, 1})."""


@NEURONS.register("lif")
class LIF(SpikingNeuron):
    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 detach_reset: bool = False, surrogate: str = "atan", alpha: float | None = None):
        super().__init__()
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.v_reset = v_reset
        self.detach_reset = detach_reset
        self.surrogate = create_surrogate(surrogate, alpha)

    def forward(self, x):
        v0 = 0.0 if self.v_reset is None else self.v_reset
        v = torch.full_like(x[0], v0)
        out = []
        for t in range(x.shape[0]):
            h = v + (x[t] - (v - v0)) / self.tau
            s = spike(h - self.v_threshold, self.surrogate)
            sr = s.detach() if self.detach_reset else s
            v = h * (1 - sr) + v0 * sr if self.v_reset is not None else h - sr * self.v_threshold
            out.append(s)
        return torch.stack(out)


def create_neuron(name: str, **kwargs) -> SpikingNeuron:
    return NEURONS.get(name)(**kwargs)
