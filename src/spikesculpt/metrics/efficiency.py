"""All efficiency numbers of a model in one evaluation pass: SynOps, energy, activation sparsity,
footprint — overall and per layer, in the form ``metrics.json`` stores them.

    eff = measure_efficiency(model, batches)     # batches: iterable of time-major x [T, B, ...]
    eff["synops"]             {"effective_acs", "effective_macs", "dense"}  per sample, all T steps
    eff["energy_pj"]          4.6 pJ·MACs + 0.9 pJ·ACs per sample (preset "fp32"; metrics/energy.py)
    eff["activation_sparsity"]  1 − nonzero outputs / all outputs of the spiking layers (over T,
                              samples and layers); per spiking layer in ``layer_activation_sparsity``
    eff["footprint_bytes"]    {"dense", "sparse"} (metrics/footprint.py)
    eff["layers"]             {weight name: {effective_acs, effective_macs, dense_synops,
                              input_kind, energy_pj, footprint_dense_bytes, footprint_sparse_bytes,
                              footprint_format}}

SynOps follow NeuroBench's definition (metrics/synops.py); the batch size of each input is its
dim 1. The model is run in ``eval`` mode under ``torch.no_grad``; its training mode is restored.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from spikesculpt.metrics.energy import DEFAULT_PRESET, energy_per_op
from spikesculpt.metrics.footprint import footprint
from spikesculpt.metrics.synops import SynOpsCounter
from spikesculpt.models.utils import spiking_modules, stateful_modules


class ActivationCounter:
    """Nonzero and total outputs of every spiking layer (forward hooks, while active)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.nonzero: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self._handles = []

    def __enter__(self) -> "ActivationCounter":
        for name, module in spiking_modules(self.model):
            self.nonzero[name] = self.total[name] = 0
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            self.nonzero[name] += int(torch.count_nonzero(out.detach()))
            self.total[name] += out.numel()

        return hook

    def sparsity(self) -> tuple[float, dict[str, float]]:
        total = sum(self.total.values())
        overall = 1.0 - sum(self.nonzero.values()) / total if total else 0.0
        return overall, {n: 1.0 - self.nonzero[n] / self.total[n] for n in self.total
                         if self.total[n]}


@torch.no_grad()
def measure_efficiency(model: nn.Module, batches: Iterable[torch.Tensor],
                       energy_preset: str = DEFAULT_PRESET) -> dict:
    """Run ``model`` on every time-major batch and return the efficiency metrics (see module)."""
    e_mac, e_ac = energy_per_op(energy_preset)
    was_training = model.training
    model.eval()
    try:
        with SynOpsCounter(model) as ops, ActivationCounter(model) as act:
            stateful = stateful_modules(model)  # e.g. SpikingJelly neurons: reset per batch
            for x in batches:
                for module in stateful:
                    module.reset()
                model(x)
                ops.add_samples(x.shape[1])
    finally:
        model.train(was_training)
    synops = ops.per_sample()
    sparsity, layer_sparsity = act.sparsity()
    fp = footprint(model)
    layers = {}
    for name, rec in synops["layers"].items():
        entry = dict(rec)
        entry["energy_pj"] = e_mac * rec["effective_macs"] + e_ac * rec["effective_acs"]
        if name in fp["layers"]:
            f = fp["layers"][name]
            entry.update(footprint_dense_bytes=f["dense"], footprint_sparse_bytes=f["sparse"],
                         footprint_format=f["format"])
        layers[name] = entry
    return {
        "synops": {"effective_acs": synops["effective_acs"],
                   "effective_macs": synops["effective_macs"], "dense": synops["dense"]},
        "energy_pj": e_mac * synops["effective_macs"] + e_ac * synops["effective_acs"],
        "energy_preset": energy_preset,
        "activation_sparsity": sparsity,
        "layer_activation_sparsity": layer_sparsity,
        "footprint_bytes": {"dense": fp["dense"], "sparse": fp["sparse"]},
        "layers": layers,
        "samples": ops.samples,
    }


def merge_layers(layers: list[dict], efficiency: dict) -> list[dict]:
    """``metrics.json``'s ``layers`` list (``[{"name", "shape", "density"}]``) with each entry
    extended by the efficiency fields of the same weight name."""
    per = efficiency.get("layers", {})
    return [{**layer, **per.get(layer["name"], {})} for layer in layers]


SUMMARY_KEYS = ("synops", "energy_pj", "energy_preset", "activation_sparsity",
                "layer_activation_sparsity", "footprint_bytes")


def add_to_metrics(metrics: dict, efficiency: dict) -> dict:
    """Put the efficiency results into a ``metrics.json`` dict (in place): the ``SUMMARY_KEYS``
    at top level and the per-layer fields into ``metrics["layers"]``."""
    metrics.update({k: efficiency[k] for k in SUMMARY_KEYS})
    if "layers" in metrics:
        metrics["layers"] = merge_layers(metrics["layers"], efficiency)
    return metrics
