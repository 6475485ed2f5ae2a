"""Drop and grow: one rewiring step of one layer at constant connection count.

``drop_and_grow(mask, weight, n, grow_score, generator)``:

1. drop: the ``n`` active connections with the smallest ``|w|`` (ties broken at random);
2. grow: ``n`` connections among those that were inactive *before* this update (so the dropped
   and grown sets are disjoint) with the largest ``grow_score`` — ties, and the whole ranking
   when ``grow_score`` is None (random growth, SET), broken by a random permutation drawn from
   ``generator``;
3. returns the new mask (same active count) and the flat indices of dropped and grown
   connections. The caller zeroes the dropped and grown weights and their optimizer state.

``n`` is clipped to ``min(active, inactive)``; with ``n = 0`` nothing changes.
"""

from __future__ import annotations

from typing import Optional

import torch


def _ranked(candidates: torch.Tensor, score: Optional[torch.Tensor], k: int, largest: bool,
            generator: torch.Generator) -> torch.Tensor:
    """The ``k`` best of the flat indices ``candidates`` by ``score`` (random tie-break)."""
    perm = torch.randperm(len(candidates), generator=generator).to(candidates.device)
    shuffled = candidates[perm]
    if score is None:
        return shuffled[:k]
    s = score.reshape(-1)[shuffled].float()
    order = torch.sort(s, descending=largest, stable=True).indices
    return shuffled[order[:k]]


@torch.no_grad()
def drop_and_grow(mask: torch.Tensor, weight: torch.Tensor, n: int,
                  grow_score: Optional[torch.Tensor], generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    flat = mask.reshape(-1)
    active = torch.nonzero(flat, as_tuple=False).squeeze(1)
    inactive = torch.nonzero(~flat, as_tuple=False).squeeze(1)
    n = int(max(0, min(n, len(active), len(inactive))))
    empty = torch.zeros(0, dtype=torch.long, device=mask.device)
    if n == 0:
        return mask.clone(), empty, empty
    dropped = _ranked(active, weight.detach().abs(), n, largest=False, generator=generator)
    grown = _ranked(inactive, grow_score, n, largest=True, generator=generator)
    new = flat.clone()
    new[dropped] = False
    new[grown] = True
    return new.reshape(mask.shape), dropped, grown
