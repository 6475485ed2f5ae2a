"""``rigl``: Rigging the Lottery (Evci et al., ICML 2020).

From the paper: ERK layer densities; every ΔT = 100 steps drop the smallest-magnitude
connections and grow as many where the dense gradient ``|dL/dw|`` is largest; the fraction
α_t = α/2·(1 + cos(π t / T_end)) with α = 0.3 and T_end = 75% of training; regrown weights start
at zero. Our choice (and the ESL invariant): a connection dropped in an update cannot be regrown
in the same update.
"""

from __future__ import annotations

from spikesculpt.methods.dynamic.base import SparseMethod
from spikesculpt.methods.registry import register_method


@register_method("rigl")
class RigL(SparseMethod):
    """RigL: magnitude drop, dense-gradient regrowth, cosine-decayed, ERK densities (Evci 2020)."""

    name = "rigl"
    DEFAULTS = dict(init="erk", grow="gradient", update_every=100, drop_fraction=0.3,
                    update_until=0.75)
