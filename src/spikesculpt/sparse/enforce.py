"""Keeping pruned weights dead: one mechanism, two documented optimizer hooks.

``MaskEnforcer(model, optimizer, mask)`` registers

- ``optimizer.register_step_pre_hook``: before every step, the gradients of pruned weights are
  set to 0, so plain gradient, momentum, Adam moments and coupled weight decay
  (``g + λ·w`` with ``w = 0``) all see nothing there;
- ``optimizer.register_step_post_hook``: after every step, pruned weights are set to exactly 0
  again (a safety net for optimizers that move weights without a gradient, e.g. decoupled
  weight decay on a nonzero value, or any custom rule) — except for the optimizers that
  provably keep them there (``keeps_zeros``, below), where it would only cost time.

Per-element optimizer state (SGD's ``momentum_buffer``, Adam's ``exp_avg``/``exp_avg_sq``/
``max_exp_avg_sq`` — every state tensor shaped like its parameter) is zeroed at pruned positions
when the enforcer attaches and whenever the mask changes (``reset_state``), so it can never
revive a connection. With zero gradient, zero weight and zero state, every standard optimizer
(SGD ± momentum ± Nesterov ± weight decay, Adam, AdamW, RMSprop...) keeps the weight at 0.

``keeps_zeros``: PyTorch's own ``SGD``, ``Adam`` and ``AdamW`` (exactly those classes, fused or
not, any of their options) map a zero weight with zero gradient and zero per-element state to
exactly zero: SGD's step is ``-lr·(μ·b + g + λ·w)`` = 0 (momentum, dampening, Nesterov alike);
Adam's ``m`` and ``v`` stay 0, so its step is ``lr·m̂/(√v̂ + ε)`` = 0/ε = 0 (AMSGrad's max of
zeros too), and coupled (Adam) or decoupled (AdamW, ``w·(1 − lr·λ)``) weight decay of 0 is 0. The
enforcer keeps that state at every pruned position — gradients masked before each step, state
zeroed whenever the mask changes, weights zeroed at attach, mask change and load — so for those
optimizers the post-step re-zeroing is skipped (tested: weights stay exactly 0 over a run). Any
other optimizer, a subclass included, keeps the safety net.

Unlike ``torch.nn.utils.prune`` (renames the parameter to ``weight_orig``, a forward pre-hook,
twice the memory, breaks ``deepcopy`` after a forward), nothing about the model changes: the
weights themselves hold the zeros, so ``state_dict``, ``deepcopy``, NIR, NeuroBench and plain
PyTorch see the true sparse model. Cost per step: one fused multi-tensor multiplication for the
gradients (``torch._foreach_mul_`` by cached 0/1 masks in the weights' dtype, one call for all
masked layers), and a second for the weights unless the optimizer ``keeps_zeros`` — the
per-step overhead on a 1 ms digits-MLP step is a few
percent (``benchmarks/bench_sparse_methods.py --parts overhead``).

Under AMP with a fused optimizer the hooks also run on steps that ``GradScaler`` skips
(``sparse/steps.py``); masking a gradient or re-zeroing a weight is harmless there (nothing
moves), so the enforcer does not check — hooks that count steps or read gradients must.

A method that runs its own optimizer hooks (``SparseMethod``) builds the enforcer with
``hooks=False`` and calls ``apply_grads`` / ``apply_weights`` from them: one hook call per step
each way instead of two.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import nn

from spikesculpt.sparse.mask import Mask

# optimizers whose step maps (w, g, state) = 0 to w = 0 exactly (module doc: ``keeps_zeros``)
ZERO_KEEPING_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


class MaskEnforcer:
    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, mask: Mask,
                 hooks: bool = True):
        self.model = model
        self.optimizer = optimizer
        self.mask = mask
        self.hooks = hooks
        params = dict(model.named_parameters())
        self.params = {n: params[n] for n in mask}
        self._plist = list(self.params.values())
        self._pruned: dict[str, torch.Tensor] = {}
        self._keep: list[torch.Tensor] = []
        self._handles = []
        self.keeps_zeros = type(optimizer) in ZERO_KEEPING_OPTIMIZERS
        self.refresh()

    # ------------------------------------------------------------------ lifecycle
    def attach(self) -> "MaskEnforcer":
        if self.hooks and not self._handles:
            self._handles = [self.optimizer.register_step_pre_hook(self._pre_step),
                             self.optimizer.register_step_post_hook(self._post_step)]
        self.apply_weights()
        self.reset_state()
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def refresh(self) -> None:
        """Re-read the mask (after it changed): cache ``~mask`` and a 0/1 copy in the weight's
        dtype on each weight's device."""
        self._pruned = {n: ~self.mask[n].to(p.device) for n, p in self.params.items()}
        if len(self._keep) == len(self.params):  # in place: no new allocations per update
            for k, (n, p) in zip(self._keep, self.params.items()):
                k.copy_(self.mask[n])
        else:
            self._keep = [self.mask[n].to(device=p.device, dtype=p.dtype)
                          for n, p in self.params.items()]

    # ------------------------------------------------------------------ hooks
    def _pre_step(self, optimizer, args, kwargs) -> None:
        self.apply_grads()

    def _post_step(self, optimizer, args, kwargs) -> None:
        if not self.keeps_zeros:
            self.apply_weights()

    @torch.no_grad()
    def apply_grads(self) -> None:
        pairs = [(p.grad, k) for p, k in zip(self._plist, self._keep) if p.grad is not None]
        if pairs:
            grads, keeps = zip(*pairs)
            if any(g.is_sparse for g in grads):
                for g, k in pairs:
                    g.mul_(k)
            else:
                torch._foreach_mul_(list(grads), list(keeps))

    @torch.no_grad()
    def apply_weights(self) -> None:
        if self._plist:
            torch._foreach_mul_(self._plist, self._keep)

    @torch.no_grad()
    def reset_state(self, where: Optional[dict[str, torch.Tensor]] = None) -> None:
        """Zero per-element optimizer state at ``where[name]`` (bool, weight-shaped), or at
        every pruned position when ``where`` is None."""
        for n, p in self.params.items():
            state = self.optimizer.state.get(p)
            if not state:
                continue
            sel = self._pruned[n] if where is None else where.get(n)
            if sel is None:
                continue
            for value in _elementwise_state(state, p):
                value.masked_fill_(sel.to(value.device), 0)


def _elementwise_state(state: dict, param: torch.Tensor) -> Iterable[torch.Tensor]:
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.shape == param.shape:
            yield value
