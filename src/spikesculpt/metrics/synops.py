"""Effective synaptic operations (SynOps): the (nonzero input, nonzero weight) pairs a layer uses.

Definition (NeuroBench's ``SynapticOperations``, Yik et al. 2025, and design notes §4): for every
call of a *connection layer* (``nn.Linear``, ``nn.Conv1d/2d/3d``, subclasses included, e.g.
SpikingJelly's ``layer.Linear``), count the pairs (input element x_i, weight w) that meet in the
layer's sum with **both** x_i ≠ 0 and w ≠ 0:

- linear ``y = W x``, ``W [out, in]``, input rows ``x [N, in]`` (N = all leading dims, e.g. T·B)::

      effective = Σ_n Σ_i [x[n, i] ≠ 0] · nnz(W[:, i])          dense = N · in · out

- convolution: the same through the kernel, i.e. the sum of the convolution of the input's
  nonzero indicator with the weight's nonzero indicator (same stride, padding, dilation, groups).
  Zero padding contributes nothing; ``dense`` is that convolution with an all-ones input and
  kernel, so the border taps that fall on padding are not counted (as in NeuroBench).

Every call is one *accumulate* (AC) per pair if the layer's input lies in {0, 1} or {−1, 0, 1}
(spikes; ternary spikes), otherwise a *multiply-accumulate* (MAC): the first layer on static
images with direct (analog) encoding does MACs, every layer fed by spikes does ACs. The decision
is made per call from the actual tensor. Biases are not synaptic operations (NeuroBench: "bias is
not considered"); pooling, BatchNorm, flatten and the neurons' own state updates are not either.
The readout (a plain ``nn.Linear`` fed by spikes) is counted.

Units: operations **per sample**, summed over all T time steps and all layers, averaged over the
evaluated samples (``per_sample()``; the batch size is read from dim 1 of the time-major model
input ``[T, B, ...]`` by ``measure`` or given to ``add_samples``). Counts are exact integers
(float64 arithmetic on 0/1 indicators; exact below 2**53).

    with SynOpsCounter(model) as ops:
        for x in batches:           # x [T, B, ...]
            model(x); ops.add_samples(x.shape[1])
    ops.per_sample()   # {"effective_acs", "effective_macs", "dense", "layers": {...}}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from spikesculpt.models.utils import PRUNABLE_TYPES


def connection_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(weight name, module)]`` of the connection layers, in registration order.

    The name is the weight's state-dict key (``"hidden.0.fc.weight"``), the key ``metrics.json``'s
    ``layers`` use. A module reached under several names is listed once.
    """
    seen, found = set(), []
    for name, module in model.named_modules():
        if is_connection_layer(module) and id(module) not in seen:
            seen.add(id(module))
            found.append((f"{name}.weight" if name else "weight", module))
    return found


def is_connection_layer(module: nn.Module) -> bool:
    """Conv / linear layers, and layers that *generate* such a weight and say so with
    ``connection_kind = "linear" | "conv"`` (gene-encoded layers: ``GeneLinear`` /
    ``GeneConv2d``, whose ``weight`` is generated; counted like the plain layer they replace)."""
    return isinstance(module, PRUNABLE_TYPES) or \
        getattr(module, "connection_kind", None) in ("linear", "conv")


def is_spike_tensor(x: torch.Tensor) -> bool:
    """True if every element is -1, 0 or 1 (binary or ternary spikes): accumulates suffice."""
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def _rows(x: torch.Tensor, features: int) -> torch.Tensor:
    return x.reshape(-1, features)


def linear_ops(x: torch.Tensor, weight: torch.Tensor) -> tuple[int, int]:
    """(effective, dense) pairs of ``y = x W^T`` for ``x [..., in]``, ``weight [out, in]``."""
    out_f, in_f = weight.shape
    nz_x = _rows(x.detach() != 0, in_f).to(torch.float64)          # [N, in]
    per_input = (weight.detach() != 0).sum(0).to(torch.float64)   # [in]: nnz(W[:, i])
    effective = int(torch.round((nz_x @ per_input).sum()).item())
    return effective, nz_x.shape[0] * in_f * out_f


def _conv_fn(dim: int):
    return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dim]


def conv_ops(x: torch.Tensor, conv: nn.modules.conv._ConvNd) -> tuple[int, int]:
    """(effective, dense) pairs of ``conv(x)``; ``x [N, C_in, *spatial]`` (or with an extra
    leading time axis ``[T, B, C_in, *spatial]``, as SpikingJelly's multi-step convs take it)."""
    w = conv.weight.detach()
    dim = w.dim() - 2
    x = x.detach()
    if x.dim() == w.dim() + 1:
        x = x.flatten(0, 1)
    groups = conv.groups
    c_out, c_in_g = w.shape[:2]
    k = w.shape[2:]
    # Σ over the output channels of a group first: conv(nz(x), Σ_co nz(W[co])) has the same sum
    # and one output channel per group, so the count costs a fraction of the layer itself.
    kernel = (w != 0).to(torch.float64).reshape(groups, c_out // groups, c_in_g, *k).sum(1)
    nz_x = (x != 0).to(torch.float64)
    ones = torch.ones(1, 1, *x.shape[2:], dtype=torch.float64, device=x.device)
    if conv.padding_mode != "zeros":
        pad = conv._reversed_padding_repeated_twice
        nz_x = F.pad(nz_x, pad, mode=conv.padding_mode)
        ones = F.pad(ones, pad, mode=conv.padding_mode)
        padding = 0
    else:
        padding = conv.padding
    fn = _conv_fn(dim)
    eff = fn(nz_x, kernel, None, conv.stride, padding, conv.dilation, groups)
    taps = fn(ones, torch.ones(1, 1, *k, dtype=torch.float64, device=x.device), None,
              conv.stride, padding, conv.dilation)
    effective = int(torch.round(eff.sum()).item())
    dense = int(torch.round(taps.sum()).item()) * x.shape[0] * c_out * c_in_g
    return effective, dense


def layer_ops(module: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(effective, dense) synaptic operations of one call of a connection layer on input ``x``."""
    if isinstance(module, nn.Linear) or getattr(module, "connection_kind", None) == "linear":
        return linear_ops(x, module.weight)
    return conv_ops(x, module)


@dataclass
class LayerOps:
    """Totals of one connection layer over all recorded calls (not yet per sample)."""

    acs: int = 0
    macs: int = 0
    dense: int = 0
    calls: int = 0
    kinds: set = field(default_factory=set)

    def add(self, effective: int, dense: int, spiking: bool) -> None:
        if spiking:
            self.acs += effective
        else:
            self.macs += effective
        self.dense += dense
        self.calls += 1
        self.kinds.add("ac" if spiking else "mac")


class SynOpsCounter:
    """Counts effective ACs, MACs and dense SynOps of every connection layer with forward
    pre-hooks, while active (``with SynOpsCounter(model) as ops: ...``)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers: dict[str, LayerOps] = {}
        self.samples = 0
        self._handles = []

    def __enter__(self) -> "SynOpsCounter":
        for name, module in connection_layers(self.model):
            self.layers[name] = LayerOps()
            self._handles.append(module.register_forward_pre_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, inputs):
            x = inputs[0]
            with torch.no_grad():
                effective, dense = layer_ops(module, x)
                self.layers[name].add(effective, dense, is_spike_tensor(x))

        return hook

    def add_samples(self, n: int) -> None:
        self.samples += int(n)

    def per_sample(self) -> dict:
        """``{"effective_acs", "effective_macs", "dense", "layers": {name: {...}}}`` per sample.

        Per layer: ``effective_acs``, ``effective_macs``, ``dense_synops`` (per sample) and
        ``input_kind``: ``"spikes"`` (ACs), ``"analog"`` (MACs) or ``"mixed"``.
        """
        n = max(self.samples, 1)
        layers = {}
        for name, rec in self.layers.items():
            kind = ("spikes" if rec.kinds == {"ac"} else "analog" if rec.kinds == {"mac"}
                    else "mixed" if rec.kinds else "unused")
            layers[name] = {"effective_acs": rec.acs / n, "effective_macs": rec.macs / n,
                            "dense_synops": rec.dense / n, "input_kind": kind}
        return {"effective_acs": sum(r.acs for r in self.layers.values()) / n,
                "effective_macs": sum(r.macs for r in self.layers.values()) / n,
                "dense": sum(r.dense for r in self.layers.values()) / n,
                "layers": layers}
