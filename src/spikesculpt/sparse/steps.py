"""What an optimizer step hook may assume about the step it runs in: does it happen, and how
are the gradients it sees scaled? (Mixed precision: ``torch.amp.GradScaler``.)

A ``GradScaler`` multiplies the loss by a scale ``s`` (2¹⁶ at first), so every gradient is
``s × dL/dw``, and skips the optimizer step when one of them is inf/NaN (then halves ``s``).
How our hooks see that depends on the optimizer:

- a plain optimizer: ``scaler.step`` first unscales the gradients in place (÷ s); on overflow it
  does not call ``optimizer.step()`` at all, so step hooks only ever run on real steps and see
  the true gradients;
- an optimizer with ``_step_supports_amp_scaling`` (PyTorch's *fused* Adam / AdamW / SGD, which
  our training loop builds): ``scaler.step`` always calls ``optimizer.step()``, with two tensor
  attributes set on the optimizer for the duration of the call, ``grad_scale`` (``s``, or None
  when ``scaler.unscale_`` already ran) and ``found_inf`` (1.0 on overflow); the fused kernel
  unscales and skips internally. Pre-step hooks therefore run on *every* step, skipped or not,
  and see ``s ×`` the gradients (or infs).

``step_skipped(optimizer)`` and ``grad_scale(optimizer)`` read those attributes, so a hook that
counts steps or reads gradients behaves the same under both: count and rewire only when
``not step_skipped(opt)``, and divide gradients by ``grad_scale(opt)``. Without AMP (or with a
plain optimizer) the attributes are absent: no step is skipped, the scale is 1.

Cost: ``step_skipped`` reads one scalar from the device (a synchronisation) when ``found_inf``
is set, i.e. only under AMP with a fused optimizer — where a plain optimizer's
``GradScaler.step`` synchronises anyway.
"""

from __future__ import annotations

from typing import Optional

import torch


def step_skipped(optimizer: torch.optim.Optimizer) -> bool:
    """True when ``GradScaler`` found inf/NaN gradients for the step being taken: the optimizer
    does not (pre-step hook) / did not (post-step hook) change any parameter."""
    found_inf = getattr(optimizer, "found_inf", None)
    return found_inf is not None and bool(found_inf.item() != 0)


def grad_scale(optimizer: torch.optim.Optimizer) -> Optional[torch.Tensor]:
    """The factor ``s`` by which gradients seen in a pre-step hook exceed ``dL/dw`` (a scalar
    tensor on the scaler's device), or None when they are not scaled (divide by it as is: no
    synchronisation). After a fused step the gradients have been unscaled in place."""
    scale = getattr(optimizer, "grad_scale", None)
    return scale if isinstance(scale, torch.Tensor) else None


def unscaled(optimizer: torch.optim.Optimizer, grad: torch.Tensor) -> torch.Tensor:
    """``grad`` as read in a pre-step hook, divided by the AMP scale if there is one (a new
    tensor when scaled, ``grad`` itself when not)."""
    scale = grad_scale(optimizer)
    return grad if scale is None else grad / scale.to(grad.device)
