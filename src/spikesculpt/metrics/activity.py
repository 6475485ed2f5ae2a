"""Firing rates of the spiking layers, recorded with forward hooks during evaluation.

The firing rate of a layer is spikes / (neurons × time steps × samples), a fraction in [0, 1].
The network's ``firing_rate`` weights every layer by its number of neuron-time-steps, i.e. it is
total spikes / total neuron-time-steps over all spiking layers. Hooks are attached only while the
recorder is active (``with ActivityRecorder(model) as rec:``), so training pays nothing.
"""

from __future__ import annotations

from torch import nn

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

    def layer_rates(self) -> dict[str, float]:
        return {name: self.spikes[name] / self.counts[name] for name in self.spikes
                if self.counts[name]}

    def firing_rate(self) -> float:
        total = sum(self.counts.values())
        return sum(self.spikes.values()) / total if total else 0.0
