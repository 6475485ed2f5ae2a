"""``dense``: plain training, every weight trained, no mask (the reference for every method)."""

from __future__ import annotations

from spikesculpt.methods.base import Method
from spikesculpt.methods.registry import register_method


@register_method("dense")
class Dense(Method):
    """Plain dense training: every weight is trained, no mask."""

    name = "dense"
    calibrates_init = True
