"""Magnitude pruning: the masks of iterative magnitude pruning (IMP) and early-bird, and
one-shot ticket masks of a trained model (``magnitude_ticket``).

One round removes a fraction ``rate`` of the *remaining* connections (Frankle & Carbin, ICLR
2019; Kim et al., ECCV 2022: 25% per round), those with the smallest ``|w|``:

- ``global``: one ranking over every masked layer; exactly ``round(rate · A)`` connections go,
  A = active connections of all masked layers together (Kim et al.'s choice, and Frankle &
  Carbin's for deep conv nets). Layers may end at different densities.
- ``layer``: every layer loses exactly ``round(rate · A_l)`` of its own A_l active connections,
  so every layer keeps the same density.

``min_inputs`` = k > 0 (ours, not the papers'): a floor on every output unit (a Linear's row, a
conv's output channel): the k largest ``|w|`` among its active inputs are never pruned, and the
round's count is taken from the rest, so exactly as many connections go as without the floor
(``UserError`` when the floor leaves too few). Global magnitude ranks layers on one scale and
can thin a layer with small weights until its neurons get too little input to fire, or a small
readout down to a handful of connections (docs/lottery.md, "Layer collapse").

Only active connections are ranked; pruned ones stay pruned. Ties in ``|w|`` are broken by
position (stable sort in the order of the mask's names, then the flat index), so the same
weights always give the same mask. Layers outside the mask (``dense_first`` / ``dense_last``)
are never pruned.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models.utils import prunable_parameters
from spikesculpt.sparse import Mask


def ticket_layers(model: nn.Module, dense_first: bool = False,
                  dense_last: bool = False) -> list[str]:
    """Names of the prunable weights a ticket search may prune (forward order)."""
    names = [n for n, _ in prunable_parameters(model)]
    if not names:
        raise UserError("lottery tickets need a model with conv / linear layers to prune; "
                        "this one has none")
    keep = set()
    if dense_first:
        keep.add(names[0])
    if dense_last:
        keep.add(names[-1])
    chosen = [n for n in names if n not in keep]
    if not chosen:
        raise UserError("--dense-first/--dense-last leave no layer to prune; drop one of them")
    return chosen


def full_mask(model: nn.Module, names) -> Mask:
    """Every connection of ``names`` present (the dense level 0)."""
    return Mask.ones_like(model, names)


@torch.no_grad()
def magnitude_prune(weights: Mapping[str, torch.Tensor], mask: Mask, rate: float,
                    scope: str = "global", min_inputs: int = 0) -> Mask:
    """A new mask with ``rate`` of ``mask``'s active connections removed (smallest ``|w|``);
    the ``min_inputs`` largest of every output unit's active inputs are kept (module doc)."""
    if not 0 < rate < 1:
        raise UserError(f"rate must be in (0, 1), got {rate!r}")
    if scope not in ("global", "layer"):
        raise UserError(f"unknown pruning scope {scope!r}; choose global or layer")
    new = mask.clone().to("cpu")
    names = mask.names()
    mags = {n: _ranked_magnitudes(weights[n], new[n], min_inputs) for n in names}
    groups = [[n] for n in names] if scope == "layer" else [names]
    for group in groups:
        actives = [torch.nonzero(new[n].reshape(-1)).squeeze(1) for n in group]
        values = torch.cat([mags[n][a] for n, a in zip(group, actives)])
        count = int(round(rate * len(values)))
        free = int(torch.isfinite(values).sum())
        if count > free:
            raise UserError(f"min_inputs={min_inputs} keeps {len(values) - free} of the "
                            f"{len(values)} active connections of {', '.join(group)}, so the "
                            f"{count} this round must remove cannot go; lower --min-inputs or "
                            f"--rounds")
        owner = torch.cat([torch.full((len(a),), i, dtype=torch.long)
                           for i, a in enumerate(actives)])
        where = torch.cat(actives)
        order = torch.sort(values, stable=True).indices[:count]
        for i, n in enumerate(group):
            new[n].view(-1)[where[order[owner[order] == i]]] = False
    return new


def _ranked_magnitudes(weight: torch.Tensor, layer_mask: torch.Tensor,
                       min_inputs: int) -> torch.Tensor:
    """Flat ``|w|`` of one layer for the ranking, +inf at the connections the floor keeps: the
    ``min_inputs`` largest active ``|w|`` of every output unit (row of ``weight.reshape(out,
    -1)``; ties: the earlier input)."""
    mags = weight.detach().abs().float().cpu().reshape(-1).clone()
    if min_inputs <= 0:
        return mags
    rows = mags.view(weight.shape[0], -1)
    active = layer_mask.reshape(weight.shape[0], -1).bool()
    k = min(int(min_inputs), rows.shape[1])
    order = torch.sort(torch.where(active, -rows, torch.inf), dim=1, stable=True).indices[:, :k]
    keep = torch.zeros_like(active).scatter_(1, order, True) & active
    rows[keep] = torch.inf
    return mags


def floor_connections(shapes: Mapping[str, tuple], min_inputs: int) -> int:
    """Connections the ``min_inputs`` floor keeps at most: Σ over layers of outputs ×
    min(k, fan-in) (``shapes``: weight shapes, outputs first)."""
    total = 0
    for shape in shapes.values():
        fan_in = 1
        for s in shape[1:]:
            fan_in *= int(s)
        total += int(shape[0]) * min(int(min_inputs), fan_in)
    return total


def magnitude_ticket(model: nn.Module, density: float, scope: str = "global",
                     dense_first: bool = False, dense_last: bool = False) -> Mask:
    """One-shot magnitude pruning: the mask keeping the ``density`` fraction of ``model``'s
    prunable weights with the largest ``|w|`` (a ticket mask for the ``ticket`` method).

    ``scope``: ``global`` (one ranking over every layer; layers may end at different densities)
    or ``layer`` (every layer keeps ``density`` of its own weights). ``density`` counts the
    masked layers; ``dense_first`` / ``dense_last`` leave those layers out of the mask (dense).
    Exactly ``round((1 - density) · n)`` weights go (n: of all masked layers, or of each layer);
    ties are broken by position (``magnitude_prune``). The model is not changed.

        mask = magnitude_ticket(trained, 0.1)            # then, e.g. from the initialisation:
        spikesculpt.fit(fresh_model, splits, method="ticket", mask=mask)
    """
    if isinstance(density, bool) or not isinstance(density, (int, float)) \
            or not 0 < density <= 1:
        raise UserError(f"density must be in (0, 1] (the fraction of connections kept), got "
                        f"{density!r}; pass e.g. density=0.1")
    mask = full_mask(model, ticket_layers(model, dense_first, dense_last)).to("cpu")
    if density == 1:
        return mask
    params = dict(model.named_parameters())
    return magnitude_prune({n: params[n] for n in mask}, mask, 1.0 - density, scope)


def model_density(model: nn.Module, mask: Mask) -> float:
    """Active connections / all prunable weights (layers outside ``mask`` count as dense)."""
    total = active = 0
    for name, p in prunable_parameters(model):
        total += p.numel()
        active += mask.active(name) if name in mask else p.numel()
    return active / total if total else 1.0


def layer_density(model: nn.Module, mask: Mask) -> dict[str, float]:
    return {n: (mask.density(n) if n in mask else 1.0) for n, _ in prunable_parameters(model)}
