"""``esl``: evolutionary structure learning (ESL-SNN, Shen et al., AAAI 2023, arXiv 2306.03693).

From the paper: sparse from the first step; masks initialised as an Erdős–Rényi random graph;
weights learn every iteration (surrogate-gradient BPTT); every ``T_iter`` iterations the weak
connections are pruned and as many regrown, so the density never changes.

Our choices (the paper does not publish code or these details; defaults picked by
``benchmarks/bench_sparse_methods.py``, see docs/methods.md):

- layer densities ``er`` (SET's Erdős–Rényi rule);
- drop: the smallest ``|w|`` among a layer's active connections;
- grow: ``gradient`` (the largest dense |dL/dw| at the update step); ``random`` and ``hebbian``
  (our spike-native rule: the largest pre/post spike coincidence of the last batch) available;
- rewiring fraction α0 = 0.3 with cosine decay, updates stop at 75% of training;
- ``T_iter`` = 25 optimizer steps.

Why gradient and 25: chosen on *validation* accuracy by ``benchmarks/bench_sparse_methods.py
--parts sweep`` (growth rule × T_iter at density 0.1, several seeds; the table and the paired
differences are in docs/methods.md). The rule for a default: it stays unless a candidate beats it
on validation with a paired 95% CI above zero; no candidate has so far.
- regrown weights start at zero with fresh optimizer state.
"""

from __future__ import annotations

from spikesculpt.methods.dynamic.base import SparseMethod
from spikesculpt.methods.registry import register_method

DEFAULT_GROW = "gradient"
DEFAULT_EVERY = 25


@register_method("esl")
class ESL(SparseMethod):
    """ESL: ER-initialised sparse SNN, prune weakest + regrow every T_iter steps (Shen 2023)."""

    name = "esl"
    DEFAULTS = dict(init="er", grow=DEFAULT_GROW, update_every=DEFAULT_EVERY, drop_fraction=0.3,
                    update_until=0.75, grace=0)
