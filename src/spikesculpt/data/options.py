"""Dataset options in the dataset name: ``name:key=value,key=value`` (or a bare first value).

    parse_options("cifar10-dvs", "48,bins=count", {"size": 128, "bins": "time"}, positional="size")
    # -> {"size": 48, "bins": "count"}

The dataset name is part of the run's config hash, so every option that changes the data also
names a different run directory. Values take the type of their default (int, float, str); an
unknown key, a missing ``=`` or a value of the wrong type is a ``UserError`` that lists the
options.
"""

from __future__ import annotations

from typing import Any, Optional

from spikesculpt.core.errors import UserError


def _convert(dataset: str, key: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            value = float(text)
            if not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise UserError(f"{dataset}: option {key}={text!r} must be a "
                        f"{type(default).__name__}") from None
    return text


def parse_options(dataset: str, arg: Optional[str], defaults: dict,
                  positional: Optional[str] = None) -> dict:
    """``defaults`` updated by the ``key=value`` pairs of ``arg`` (see the module docstring)."""
    out = dict(defaults)
    if not arg:
        return out
    for i, item in enumerate(arg.split(",")):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            key, _, text = item.partition("=")
            key = key.strip().replace("-", "_")
        elif i == 0 and positional:
            key, text = positional, item
        else:
            raise UserError(f"{dataset}: cannot read option {item!r}; write key=value "
                            f"(options: {', '.join(sorted(defaults))})")
        if key not in defaults:
            raise UserError(f"{dataset}: unknown option {key!r}; the options are: "
                            f"{', '.join(sorted(defaults))}")
        out[key] = _convert(dataset, key, text.strip(), defaults[key])
    return out
