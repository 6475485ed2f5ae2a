"""Drop and grow: one rewiring step of one layer at constant connection count.

``drop_and_grow(mask, weight, n, grow_score, generator, protected=None)``:

1. drop: the ``n`` active connections with the smallest ``|w|``, among those not ``protected``
   (e.g. connections regrown within a grace period, which still sit near their zero start);
2. grow: ``n`` connections among those that were inactive *before* this update (so the dropped
   and grown sets are disjoint) with the largest ``grow_score``, or ``n`` drawn uniformly from
   ``generator`` when ``grow_score`` is None (random growth, SET);
3. returns the new mask (same active count) and the flat indices of dropped and grown
   connections. The caller zeroes the dropped and grown weights and their optimizer state.

Ranking is a top-k, not a sort: over the candidates alone when they are fewer than a quarter
of the layer (dropping in a sparse layer), else over the whole layer with ∓inf outside the
set. Where the k-th and (k+1)-th best scores are equal, the choice among the tied candidates is
made at random (a permutation from ``generator``), so equal scores never favour low indices.
``n`` is clipped to ``min(droppable, inactive)`` (droppable: active and not protected); with
``n = 0`` nothing changes.
"""

from __future__ import annotations

from typing import Optional

import torch


def _random_pick(candidates: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    idx = torch.nonzero(candidates, as_tuple=False).squeeze(1)
    perm = torch.randperm(len(idx), generator=generator).to(idx.device)
    return idx[perm[:k]]


def _best(candidates: torch.Tensor, count: int, score: Optional[torch.Tensor], k: int,
          largest: bool, generator: torch.Generator) -> torch.Tensor:
    """Flat indices of the ``k`` best of the ``candidates`` (bool, flat) by ``score``."""
    if score is None:
        return _random_pick(candidates, k, generator)
    fill = float("-inf") if largest else float("inf")
    m = min(k + 1, count)
    s = None  # the whole layer's scores, ∓inf outside the candidates
    if 4 * count < candidates.numel():
        # few candidates (dropping among the active connections of a sparse layer): rank only
        # them; the same set as ranking the whole layer, at a fraction of the top-k's cost
        where = torch.nonzero(candidates, as_tuple=False).squeeze(1)
        vals, pick = torch.topk(score.reshape(-1)[where].float(), m, largest=largest,
                                sorted=True)
        idx = where[pick]
    else:
        s = torch.where(candidates, score.reshape(-1).float(), fill)
        vals, idx = torch.topk(s, m, largest=largest, sorted=True)
    if m == k or vals[k - 1] != vals[k]:
        return idx[:k]
    # a tie across the cut: keep the strictly better ones, draw the rest among the tied
    if s is None:
        s = torch.where(candidates, score.reshape(-1).float(), fill)
    cut = vals[k - 1]
    better = (s > cut) if largest else (s < cut)
    sure = torch.nonzero(better & candidates, as_tuple=False).squeeze(1)
    tied = candidates & (s == cut)
    return torch.cat([sure, _random_pick(tied, k - len(sure), generator)])


@torch.no_grad()
def drop_and_grow(mask: torch.Tensor, weight: torch.Tensor, n: int,
                  grow_score: Optional[torch.Tensor], generator: torch.Generator,
                  protected: Optional[torch.Tensor] = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    flat = mask.reshape(-1)
    n_active = int(flat.sum())
    n_inactive = flat.numel() - n_active
    droppable = flat if protected is None else flat & ~protected.reshape(-1)
    n_droppable = n_active if protected is None else int(droppable.sum())
    n = int(max(0, min(n, n_droppable, n_inactive)))
    empty = torch.zeros(0, dtype=torch.long, device=mask.device)
    if n == 0:
        return mask.clone(), empty, empty
    dropped = _best(droppable, n_droppable, weight.detach().abs(), n, largest=False,
                    generator=generator)
    grown = _best(~flat, n_inactive, grow_score, n, largest=True, generator=generator)
    new = flat.clone()
    new[dropped] = False
    new[grown] = True
    return new.reshape(mask.shape), dropped, grown
