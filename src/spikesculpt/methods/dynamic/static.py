"""``static``: a random sparse network, never rewired (the baseline every sparse method must beat).

Masks as ESL's (Erdős–Rényi allocation and exact-count random graph), weights trained, topology
fixed for the whole run.
"""

from __future__ import annotations

from spikesculpt.methods.dynamic.base import SparseMethod
from spikesculpt.methods.registry import register_method


@register_method("static")
class Static(SparseMethod):
    """Random sparse network at fixed density, never rewired (ER layer densities)."""

    name = "static"
    rewires = False
    DEFAULTS = dict(init="er", grow=None, update_every=None, drop_fraction=0.0, update_until=1.0)
