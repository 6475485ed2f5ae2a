"""``set``: Sparse Evolutionary Training (Mocanu et al., Nat. Commun. 2018).

From the paper: Erdős–Rényi layer densities; at the end of every epoch remove the fraction ζ of
the smallest-magnitude connections of each layer and add as many at random; ζ = 0.3, constant.
Our choices: updates stop at ``update_until`` (default 1.0: all of training, as in the paper);
``--update-every N`` replaces "once per epoch" by every N optimizer steps.
"""

from __future__ import annotations

from spikesculpt.methods.dynamic.base import SparseMethod
from spikesculpt.methods.registry import register_method


@register_method("set")
class SET(SparseMethod):
    """SET: magnitude drop, random regrowth, once per epoch, constant ζ = 0.3 (Mocanu 2018)."""

    name = "set"
    schedule = "constant"
    DEFAULTS = dict(init="er", grow="random", update_every=None, drop_fraction=0.3,
                    update_until=1.0)
