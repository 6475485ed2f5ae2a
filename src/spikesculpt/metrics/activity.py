"""Firing rates of the spiking layers, recorded with forward hooks during evaluation.

The firing rate of a layer is spikes / (neurons × time steps × samples), a fraction in [0, 1].
The network's ``firing_rate`` weights every layer by its number of neuron-time-steps, i.e. it is
total spikes / total neuron-time-steps over all spiking layers. Hooks are attached only while the
recorder is active (``with ActivityRecorder(model) as rec:``), so training pays nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from spikesculpt.core.distributed import all_reduce_sum_
from spikesculpt.models.utils import spiking_modules


class ActivityRecorder:
    def __init__(self, model: nn.Module):
        self.model = model
        self.spikes: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._handles = []

    def __enter__(self) -> "ActivityRecorder":
        for name, module in spiking_modules(self.model):
            self.spikes[name] = 0.0
            self.counts[name] = 0
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name):
        def hook(module, inputs, output):
            self.spikes[name] += float(output.detach().sum())
            self.counts[name] += output.numel()

        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def all_reduce(self) -> None:
        """Spikes and counts summed over the ranks of a distributed run (each rank saw its
        slice of the data; a no-op in one process)."""
        names = sorted(self.spikes)
        sums = all_reduce_sum_(torch.tensor([[self.spikes[n], self.counts[n]] for n in names],
                                            dtype=torch.float64).reshape(-1, 2))
        for n, (spikes, count) in zip(names, sums.tolist()):
            self.spikes[n], self.counts[n] = spikes, int(count)

    def layer_rates(self) -> dict[str, float]:
        return {name: self.spikes[name] / self.counts[name] for name in self.spikes
                if self.counts[name]}

    def firing_rate(self) -> float:
        total = sum(self.counts.values())
        return sum(self.spikes.values()) / total if total else 0.0
