"""``PopulationTrainer``: the training loop for a population of P models run as one module.

A population module maps time-major input ``[T, B, ...]`` to logits ``[P, T, B, K]`` — candidate
p's logits at index p (``experiments/evolution``: ``StackedPopulation``, ``VmappedPopulation``).
Each candidate's parameters reach only its own logits, so with the summed loss

    L = Σ_p loss(logits[p], y)

the gradient of every candidate's parameters is the one it would get trained alone, and an
element-wise optimizer (SGD, Adam, AdamW) stepping the stacked tensors is P separate optimizers.
Everything else is ``Trainer``'s: batches, encoding, augmentation (the same batch for every
candidate), schedule, AMP, BatchNorm warm start, callbacks. ``evaluate`` gives per-candidate
accuracies (a list; ``Trainer.count_correct`` counts per leading index) and the summed loss;
train with ``train_epochs`` — ``fit``'s best-epoch selection is defined for one model only.
"""

from __future__ import annotations

import torch
from torch.func import vmap

from spikesculpt.train.trainer import Trainer


class PopulationTrainer(Trainer):
    """``Trainer`` for a module with logits ``[P, T, B, K]`` (see the module docstring)."""

    def batch_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Σ_p ``loss_fn(logits[p], y)`` (each candidate's loss computed as ``Trainer`` does)."""
        return vmap(lambda z: self.loss_fn(z.float(), y))(logits).sum()

    def fit(self, on_epoch_done=None) -> dict:
        raise NotImplementedError("a population trains with train_epochs() and is scored with "
                                  "evaluate(); fit() picks the best epoch of one model")
