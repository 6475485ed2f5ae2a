"""``VmappedPopulation``: P networks of one architecture run with ``torch.func.vmap``.

The fallback of :class:`StackedPopulation` (``stacked.py``) for models it cannot stack (e.g.
PLIF's learnable time constant, token models): every parameter and buffer of the template model
is stacked along a new leading population axis (``[P, ...]``), and the forward is
``vmap(functional_call(template, (params[p], buffers[p]), x))`` over p: ``[T, B, ...] ->
[P, T, B, K]``. Any model vmap can run works, but spiking neurons take their per-time-step
autograd path under vmap (their fused kernels do not support it), so it is slower than stacking.

The stacked tensors are this module's own parameters and buffers (so ``PopulationTrainer``'s
optimizer steps them); the template is held outside the module tree: its own tensors are never
used, and hooks on its modules (activity recording, BatchNorm warm start) do not see the vmapped
calls. ``candidate_state(p)`` gives candidate p's tensors under the template's names.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap


class VmappedPopulation(nn.Module):
    """``P`` models of identical architecture as one module: ``[T, B, ...] -> [P, T, B, K]``."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if not models:
            raise ValueError("an empty population")
        template = models[0]
        object.__setattr__(self, "template", template)   # not a submodule (see the module)
        per_model = [(dict(m.named_parameters()), dict(m.named_buffers())) for m in models]
        self.param_names = [n for n, _ in template.named_parameters()]
        self.buffer_names = [n for n, _ in template.named_buffers()]
        self.stacked = nn.ParameterList(
            [nn.Parameter(torch.stack([p[n].detach() for p, _ in per_model]))
             for n in self.param_names])
        for i, n in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", torch.stack([b[n] for _, b in per_model]))

    @property
    def population(self) -> int:
        return int(self.stacked[0].shape[0]) if len(self.stacked) else 0

    def _tensors(self) -> tuple[dict, dict]:
        params = dict(zip(self.param_names, self.stacked))
        buffers = {n: getattr(self, f"buffer_{i}") for i, n in enumerate(self.buffer_names)}
        return params, buffers

    def train(self, mode: bool = True) -> "VmappedPopulation":
        super().train(mode)
        self.template.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params, buffers = self._tensors()
        return vmap(lambda p, b: functional_call(self.template, (p, b), (x,)), in_dims=(0, 0),
                    randomness="different")(params, buffers)

    def candidate_state(self, index: int) -> tuple[dict, dict]:
        """(parameters, buffers) of candidate ``index`` under the single model's names."""
        params, buffers = self._tensors()
        return ({n: t[index] for n, t in params.items()},
                {n: t[index] for n, t in buffers.items()})
