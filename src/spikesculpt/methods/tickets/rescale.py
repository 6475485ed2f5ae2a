"""Norm-preserving rescaling of a sparse start (``--rescale``; ours, not the papers').

A neuron of a layer without a normalisation after it sees the current Σ_i w_i s_i; with the
inputs s_i roughly independent, its variance is ∝ Σ_i w_i², the squared norm of the neuron's
weights. Pruning a layer to density d removes most of that norm, so a very sparse BN-free
layer starts far below threshold and can stay silent (docs/lottery.md). ``rescale_to_dense_norm``
multiplies the kept weights of every such layer by one factor

    c_l = ‖W_l‖ / ‖W_l ⊙ m_l‖          (W_l: the dense start weights of the layer, m_l its mask)

so the sparse start has the squared norm of the dense start, layer by layer (per layer, not per
neuron: the relative sizes of a ticket's weights inside a layer stay as found). For a random
mask c_l ≈ 1/√d_l, the factor of the sparse-from-scratch methods
(``methods.dynamic.base.rescale_kept_weights``); a magnitude ticket keeps the larger weights,
so its c_l is smaller. Layers followed by a normalisation (``models.utils.normalised_layers``)
are left alone: their scale is normalised away.

The same rule applies to every start of a search with ``--rescale`` — ticket, random
re-initialisation and random pruning controls — so the comparison stays like for like. It
changes the ticket (a ticket is θ_k ⊙ m, Frankle & Carbin 2019): a rescaled ticket is θ_k ⊙ m
times one constant per layer.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from spikesculpt.models.utils import normalised_layers
from spikesculpt.sparse import Mask


def squared_norms(weights: Mapping[str, torch.Tensor], names) -> dict[str, float]:
    """``{name: ‖W‖²}`` of the dense start weights (before the mask zeroes any)."""
    return {n: float(weights[n].detach().double().pow(2).sum()) for n in names}


@torch.no_grad()
def rescale_to_dense_norm(model: nn.Module, mask: Mask,
                          dense_sq_norms: Mapping[str, float]) -> dict[str, float]:
    """Multiply the kept weights of every masked layer of ``model`` not followed by a
    normalisation by c_l = sqrt(dense ‖W_l‖² / ‖W_l ⊙ m_l‖²) (module doc); ``model``'s pruned
    weights must already be 0. Returns ``{name: c_l}`` of the layers rescaled (density < 1 and
    at least one nonzero kept weight)."""
    normalised = normalised_layers(model)
    params = dict(model.named_parameters())
    factors = {}
    for name in mask.names():
        if name in normalised or mask.active(name) == mask[name].numel():
            continue
        weight = params[name]
        kept = float(weight.detach().double().pow(2).sum())
        if kept <= 0.0:
            continue
        factor = (float(dense_sq_norms[name]) / kept) ** 0.5
        weight.mul_(factor)
        factors[name] = factor
    return factors
