"""How many connections each layer keeps, for a global density target.

Given the prunable weights ``{name: shape}``, a global density ``D`` (fraction of all prunable
weights kept) and a rule, returns the exact number of active connections per layer. Layers named
in ``dense`` keep every weight; their weights count towards the budget ``D·Σ N_l``, and the rest
of the budget is spread over the other layers.

Rules (registered in ``ALLOCATION_RULES``, name -> ``p_l(shape)``; ``p_l`` = the relative density
of layer l; each sparse layer gets density ``ε·p_l`` with one ``ε`` chosen so that the budget is
met exactly; a new rule is one more registered function):

- ``uniform``: ``p_l = 1`` (every sparse layer at the same density).
- ``er`` (Erdős–Rényi, SET: Mocanu et al., Nat. Commun. 2018):
  ``p_l = (n_in + n_out) / (n_in · n_out)`` with ``n_in``/``n_out`` the input / output
  channels or features (kernel size ignored).
- ``erk`` (Erdős–Rényi-Kernel, RigL: Evci et al., ICML 2020):
  ``p_l = (n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w)``; equals ``er`` for linear
  layers.

A layer whose ``ε·p_l`` would exceed 1 is made dense and ``ε`` is solved again for the rest
(RigL's procedure), until no layer exceeds 1. Counts are ``round(d_l · N_l)`` per layer, then
adjusted by at most one connection per layer (largest rounding remainders first) so that
``Σ count_l = round(D · Σ N_l)`` exactly. Every sparse layer keeps at least one connection.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from spikesculpt.core.errors import UserError
from spikesculpt.core.registry import Registry

ALLOCATION_RULES = Registry("layer-density rule")


@ALLOCATION_RULES.register("uniform")
def uniform(shape: Sequence[int]) -> float:
    """``p_l = 1``: every sparse layer at the same density."""
    return 1.0


@ALLOCATION_RULES.register("er")
def erdos_renyi(shape: Sequence[int]) -> float:
    """``p_l = (n_in + n_out) / (n_in · n_out)`` (SET's Erdős–Rényi rule; kernel ignored)."""
    n_out, n_in = shape[0], (shape[1] if len(shape) > 1 else 1)
    return (n_in + n_out) / (n_in * n_out)


@ALLOCATION_RULES.register("erk")
def erdos_renyi_kernel(shape: Sequence[int]) -> float:
    """``p_l = (n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w)`` (RigL's ERK; equals
    ``er`` for linear layers)."""
    kernel = list(shape[2:])
    if not kernel:
        return erdos_renyi(shape)
    n_out, n_in = shape[0], shape[1]
    return (n_in + n_out + sum(kernel)) / (n_in * n_out * math.prod(kernel))


RULES = tuple(ALLOCATION_RULES.names())  # the registered names (kept for older imports)


def layer_counts(shapes: Mapping[str, Sequence[int]], density: float, rule: str = "er",
                 dense: Iterable[str] = ()) -> dict[str, int]:
    """Active connections per layer: ``{name: count}`` (see the module docstring)."""
    relative_density = ALLOCATION_RULES.get(rule)  # UserError listing the rules
    if not 0 < density <= 1:
        raise UserError(f"density must be in (0, 1], got {density!r}")
    if not shapes:
        raise UserError("the model has no prunable (conv / linear) layer to sparsify")
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    total = sum(sizes.values())
    budget = round(density * total)
    dense = set(dense)
    unknown = dense - set(sizes)
    if unknown:
        raise ValueError(f"dense layers {sorted(unknown)} are not among the prunable layers")
    if density == 1:
        return dict(sizes)
    fixed = sum(sizes[n] for n in dense)
    if fixed > budget:
        raise UserError(f"the layers kept dense hold {fixed} of {total} weights, more than the "
                        f"density {density:g} allows ({budget}); raise --density or drop "
                        f"--dense-first / --dense-last")
    sparse = [n for n in sizes if n not in dense]
    if not sparse:
        return dict(sizes)
    rel = {n: relative_density(shapes[n]) for n in sparse}
    while True:
        remaining = budget - fixed
        weight = sum(rel[n] * sizes[n] for n in sparse)
        eps = remaining / weight if weight else 0.0
        over = [n for n in sparse if eps * rel[n] > 1]
        if not over:
            break
        for n in over:
            dense.add(n)
            fixed += sizes[n]
        sparse = [n for n in sparse if n not in over]
        if not sparse:
            break
    counts = {n: sizes[n] for n in dense}
    exact = {n: eps * rel[n] * sizes[n] for n in sparse}
    for n in sparse:
        counts[n] = min(sizes[n], max(1, int(math.floor(exact[n]))))
    short = budget - sum(counts.values())
    # hand out the rounding remainder, largest fractional parts first
    order = sorted(sparse, key=lambda n: exact[n] - math.floor(exact[n]), reverse=True)
    i = 0
    while short > 0 and order:
        n = order[i % len(order)]
        if counts[n] < sizes[n]:
            counts[n] += 1
            short -= 1
        i += 1
        if i > 4 * len(order) * (1 + short):  # every layer full: cannot place more
            break
    while short < 0:  # the floor of 1 per layer overshot: take back from the largest layers
        n = max(sparse, key=lambda m: counts[m])
        if counts[n] <= 1:
            break
        counts[n] -= 1
        short += 1
    return {n: counts[n] for n in shapes}
