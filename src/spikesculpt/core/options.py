"""Options are typed dataclasses declared by the part that reads them; YAML files, command-line
flags and keyword arguments are overlays on them (``overlay_dataclass``).

A field declares itself once with ``option``: its default, a help text, and optionally how it
is read from text, which names it may take and how it enters the run's hash::

    @dataclass
    class SparseConfig:
        density: float = option(0.1, help="sparse methods: fraction of connections kept")
        grow: Optional[str] = option(None, help="regrowth", choices=GROWTH_RULES.names,
                                     none_means="the method's own")

Everything else is derived from these declarations: the CLI flags and their ``--help``
(``spikesculpt.cli.flags``), the check that a name is one of the registered ``choices``
(``check_choices``, called by each ``validate``), the fields left out of the hash
(``unhashed_fields``, ``hashed_if_set``). The metadata keys (all optional except ``help``):

- ``help``: one line for ``--help`` (the default is appended from the dataclass);
- ``flag``: the flag's name (default ``--`` + the field name with ``-`` for ``_``); ``cli=False``
  declares a field without a flag;
- ``parse``: text -> value for the flag (default: the field's type; ``bool`` fields are switches:
  ``--name`` sets True, or ``--no-name`` sets False when the default is True);
- ``choices``: a zero-argument callable returning the valid names (a registry's ``names``), so
  a newly registered name is valid and listed without editing the option;
- ``kind``: the word for the thing named in "unknown <kind> 'x'" (default: the field name);
- ``none_means``: what a default of None means, for ``--help`` ("the method's own");
- ``metavar``: the flag's placeholder in ``--help``;
- ``read``: value given on the command line -> config value (``--genome FILE`` -> the genome);
- ``switches``: extra flags that set the field to a constant, ``(("--soft-reset", None,
  "help"),)``;
- ``hash``: ``"never"`` (bookkeeping: device, data_root) or ``"if_set"`` (hashed only away from
  its default, so adding the field did not rename existing run directories).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import MISSING, fields
from typing import Any, Callable, Iterable, Optional

from spikesculpt.core.errors import UserError

OPTION_KEYS = frozenset({"help", "flag", "cli", "parse", "choices", "kind", "none_means",
                         "metavar", "read", "switches", "hash"})


def option(default: Any = MISSING, *, help: str, default_factory: Any = MISSING,
           **metadata: Any) -> Any:
    """A dataclass field with its declaration (see the module docstring for ``metadata``)."""
    unknown = set(metadata) - OPTION_KEYS
    if unknown:
        raise TypeError(f"option() got unknown metadata {sorted(unknown)}; known: "
                        f"{', '.join(sorted(OPTION_KEYS))}")
    if metadata.get("hash") not in (None, "never", "if_set"):
        raise TypeError(f"option(hash=...) must be 'never' or 'if_set', got {metadata['hash']!r}")
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"help": help, **metadata})


def declared(cls_or_obj) -> list[dataclasses.Field]:
    """The fields of a dataclass that carry a declaration (an ``option(help=...)``)."""
    return [f for f in fields(cls_or_obj) if "help" in f.metadata]


def field_default(f: dataclasses.Field) -> Any:
    """A field's default value (a fresh one for ``default_factory`` fields)."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def check_choices(obj) -> None:
    """``UserError`` for a field whose value is not one of its declared ``choices`` (None is
    allowed where the default is None: "the method's own")."""
    for f in declared(obj):
        names: Optional[Callable[[], Iterable[str]]] = f.metadata.get("choices")
        value = getattr(obj, f.name)
        if names is None or (value is None and field_default(f) is None):
            continue
        allowed = list(names())
        if value not in allowed:
            kind = f.metadata.get("kind", f.name)
            raise UserError(f"unknown {kind} {value!r}; choose one of: {', '.join(allowed)}")


def unhashed_fields(cls) -> tuple[str, ...]:
    """Fields declared ``hash="never"`` (bookkeeping that cannot change the result)."""
    return tuple(f.name for f in fields(cls) if f.metadata.get("hash") == "never")


def hashed_if_set(cls) -> dict[str, Any]:
    """``{field: default}`` of the fields declared ``hash="if_set"``."""
    return {f.name: field_default(f) for f in fields(cls) if f.metadata.get("hash") == "if_set"}


def positive_int(text: str) -> int:
    """Parse a flag's text as an integer > 0 (an ``argparse`` type: one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """Parse a flag's text as an integer >= 0 (an ``argparse`` type: one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (a flag's comma-separated names)."""
    return [part.strip() for part in text.split(",") if part.strip()]


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
