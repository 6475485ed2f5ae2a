"""Losses on time-major logits ``[T, B, K]``.

- ``ce``: cross-entropy of the time-averaged logits, CE(1/T Σ_t o_t, y) — the usual rate readout.
- ``tet``: temporal efficient training (Deng et al., ICLR 2022), 1/T Σ_t CE(o_t, y): every time
  step is pushed towards the label (the paper's optional MSE regulariser is not included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.mean(0), target)


def tet_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    T, B, K = logits.shape
    return F.cross_entropy(logits.reshape(T * B, K), target.repeat(T))


LOSSES = {"ce": ce_loss, "tet": tet_loss}
