"""Scores that rank connections for pruning and regrowth (higher = more worth having).

- ``magnitude``: ``|w|`` (drop the smallest; SET, RigL, ESL), computed where it is used
  (``rewire.drop_and_grow``).
- ``gradient``: ``|dL/dw|`` of the *dense* gradient at the update step (RigL: Evci et al.,
  ICML 2020). Read from ``weight.grad`` before the gradient is masked (by the dynamic methods,
  ``methods/dynamic/base.py``, unscaled under AMP).
- ``hebbian`` (our spike-native growth rule): the pre/post coincidence of the last batch,
  ``C = Σ_{t,b} post_{t,b} ⊗ pre_{t,b}`` — for a linear layer ``W [out, in]``,
  ``C = postᵀ · pre`` with ``pre [T·B, in]`` the layer's input and ``post [T·B, out]`` the spikes
  of the spiking neuron that the layer drives; for a convolution the same sum over every kernel
  offset and position (``torch.nn.grad.conv2d_weight(pre, W.shape, post)``: the weight gradient
  with the output gradient replaced by the post-synaptic spikes). "Cells that fire together wire
  together" (Hebb 1949): grow the missing synapses between neurons that are co-active, with no
  dense gradient needed. Only pre and post activity enter — the same information a synapse has.

``HebbianRecorder`` collects C with forward hooks (training-mode forwards only) while it is
attached: a prunable layer's input is held until the next spiking neuron whose output has the
layer's output shape runs (``conv -> BN -> LIF``, ``linear -> LIF``: the neuron it drives), then
``C += postᵀ·pre`` and the input is released. A layer that drives no spiking neuron (the
readout) uses its output current as ``post``, and ``|C|`` is the score. So does a layer whose
neuron sees another shape — a pooling layer between them (``conv -> max-pool -> LIF``): spikes
of the pooled map cannot be matched to the conv's output positions. Such layers are listed in
``HebbianRecorder.fallback`` (the sparse methods warn once). Spiking neurons are
spikesculpt's ``SpikingNeuron`` and, for models built with them, SpikingJelly's ``BaseNode`` and
snnTorch's ``SpikingNeuron`` (recognised by class, without importing those packages).
"""

from __future__ import annotations

import torch
from torch import nn

from spikesculpt.core.distributed import all_reduce_dict_
from spikesculpt.models.utils import is_spiking_module  # noqa: F401  (re-exported)

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def coincidence(layer: nn.Module, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """``Σ post ⊗ pre`` shaped like ``layer.weight`` (see the module docstring).

    ``pre``: the layer's input as it received it; ``post``: activity with the layer's output
    shape (leading dims may be split differently, e.g. ``[T·B, ...]`` vs ``[T, B, ...]``).
    """
    w = layer.weight
    with torch.autocast(pre.device.type, enabled=False):  # float32 sums, also under AMP
        return _coincidence(layer, w, pre, post)


def _coincidence(layer: nn.Module, w: torch.Tensor, pre: torch.Tensor,
                 post: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, nn.Linear):
        pre2 = pre.reshape(-1, pre.shape[-1]).to(w.dtype)
        post2 = post.reshape(-1, post.shape[-1]).to(w.dtype)
        return post2.t() @ pre2
    if isinstance(layer, _CONV):
        nd = w.dim() - 2
        pre_b = pre.reshape(-1, *pre.shape[-(nd + 1):]).to(w.dtype)
        out_shape = post.shape[-(nd + 1):]
        post_b = post.reshape(-1, *out_shape).to(w.dtype)
        fn = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight,
              3: torch.nn.grad.conv3d_weight}[nd]
        return fn(pre_b, w.shape, post_b, stride=layer.stride, padding=layer.padding,
                  dilation=layer.dilation, groups=layer.groups)
    raise TypeError(f"no coincidence rule for {type(layer).__name__}")


class HebbianRecorder:
    """Accumulates ``C[name]`` for the prunable ``layers`` ``{name: module}`` while attached."""

    def __init__(self, model: nn.Module, layers: dict[str, nn.Module]):
        self.model = model
        self.layers = layers
        self.scores: dict[str, torch.Tensor] = {}
        self.fallback: set[str] = set()  # layers whose neuron had another shape: currents used
        self._pending: list[tuple[str, nn.Module, torch.Tensor, torch.Size]] = []
        self._passed: set[str] = set()   # pending layers a spiking neuron ran after
        self._handles = []

    def attach(self) -> "HebbianRecorder":
        self.scores = {}
        self._pending = []
        for name, layer in self.layers.items():
            self._handles.append(layer.register_forward_hook(self._layer_hook(name)))
        for module in self.model.modules():
            if is_spiking_module(module):
                self._handles.append(module.register_forward_hook(self._neuron_hook))
        self._handles.append(self.model.register_forward_hook(self._model_done))
        return self

    def detach(self) -> dict[str, torch.Tensor]:
        """Stop recording; return ``{name: |C|}`` for the layers seen (absent = not seen).

        In a distributed run each rank recorded its slice of the global batch: ``C`` is summed
        over the ranks first (one all-reduce of a weight-sized tensor per layer), so every rank
        gets the coincidence of the global batch — the one-process score."""
        self._flush()
        for h in self._handles:
            h.remove()
        self._handles = []
        all_reduce_dict_(self.scores)
        return {n: c.abs() for n, c in self.scores.items()}

    def _add(self, name: str, layer: nn.Module, pre: torch.Tensor, post: torch.Tensor) -> None:
        with torch.no_grad():
            c = coincidence(layer, pre, post)
        if name in self.scores:
            self.scores[name] += c
        else:
            self.scores[name] = c

    def _layer_hook(self, name):
        def hook(module, inputs, output):
            if module.training and torch.is_tensor(inputs[0]):
                self._pending.append((name, module, inputs[0].detach(), output.shape))
        return hook

    def _neuron_hook(self, module, inputs, output):
        if not module.training or not torch.is_tensor(output) or not self._pending:
            return
        keep = []
        for name, layer, pre, out_shape in self._pending:
            if output.numel() == _numel(out_shape) and \
                    tuple(output.shape[-(len(out_shape) - 1):]) == tuple(out_shape[1:]):
                self._add(name, layer, pre, output.detach())
            else:
                keep.append((name, layer, pre, out_shape))
                self._passed.add(name)
        self._pending = keep

    def _model_done(self, module, inputs, output):
        self._flush()

    def _flush(self) -> None:
        """Layers that drove no spiking neuron in this forward: post = their output current,
        recomputed from the held input."""
        pending, self._pending = self._pending, []
        self.fallback |= {name for name, *_ in pending if name in self._passed}
        self._passed = set()
        for name, layer, pre, _ in pending:
            with torch.no_grad(), torch.autocast(pre.device.type, enabled=False):
                out = layer(pre.to(layer.weight.dtype))
            self._add(name, layer, pre, out)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
