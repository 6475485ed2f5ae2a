"""Options are typed dataclasses; YAML files, command-line flags and keyword arguments are
overlays on them (``overlay_dataclass``): one function for every part's declaration."""

from __future__ import annotations

import dataclasses
from dataclasses import fields

from spikesculpt.core.errors import UserError


def overlay_dataclass(obj, values: dict, where: str):
    """Set the fields of the dataclass ``obj`` from ``values`` (nested mappings go into nested
    dataclasses), in place; unknown keys and values of the wrong type are ``UserError``s that
    name ``where`` (a file, "command line", ...)."""
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise UserError(f"unknown config key {key!r} in {where}; valid keys: "
                            f"{', '.join(sorted(known))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"config key {key!r} in {where} must be a mapping")
            overlay_dataclass(current, value, f"{where}:{key}")
        else:
            setattr(obj, key, _coerce(value, current, key, where))
    return obj


def _coerce(value, current, key, where):
    """Keep numbers typed (YAML may give 1e-3 as a string, 30 as an int for a float field)."""
    if value is None or current is None:
        return value
    try:
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(current, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        if isinstance(current, float):
            return float(value)
    except (TypeError, ValueError):
        raise UserError(f"config key {key!r} in {where} must be a {type(current).__name__}, "
                        f"got {value!r}") from None
    return value
