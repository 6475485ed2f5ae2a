"""Small validation helpers shared by the option declarations of every part."""

from __future__ import annotations

import math

from spikesculpt.core.errors import UserError


def require_finite(name: str, value, example: str) -> None:
    """``UserError`` unless ``value`` is a finite real number (not NaN, not ±inf, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value!r}; pass e.g. {example}")
