"""Command-line flags derived from the parts' option declarations (``core.options.option``).

    flags = declared_flags(TrainConfig)       # one Flag per declared field, sections included
    add_flags(parser, flags)
    args = parser.parse_args(argv)
    overlay(config, given_values(args, flags), "command line")

Every flag defaults to None, meaning "not given": only the flags on the command line overlay
the config (which may come from a YAML file first). A value flag parses its text with the
field's ``parse`` (default: its type, ``int`` / ``float`` / ``str``) and then ``read`` (e.g. a
file name -> its contents). A ``bool`` field is a switch: ``--name`` sets True, or ``--no-name``
sets False where the default is True; ``switches`` add more constant-setting flags to a field
(``--soft-reset`` sets ``v_reset`` to None). ``--help`` shows the field's help, the registered
names of its ``choices``, and the default read from the dataclass.

Options whose dataclass does not declare them yet can be given the same metadata from outside
(``declared_flags(cls, extra={"rounds": {"help": ...}})``); a declaration on the dataclass wins.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Optional

from spikesculpt.core.options import field_default


@dataclass(frozen=True)
class Flag:
    """One command-line flag and the config field it sets."""

    name: str                         # "--tau"
    path: tuple[str, ...]             # ("neuron", "tau"): where its value goes in the config
    help: str
    parse: Optional[Callable] = None  # text -> value; None: a switch that sets ``const``
    const: Any = None
    metavar: Optional[str] = None
    read: Optional[Callable] = None   # parsed value -> config value (e.g. a file's contents)

    @property
    def dest(self) -> str:
        """The ``argparse`` attribute name (``--gene-init-std`` -> ``gene_init_std``)."""
        return self.name[2:].replace("-", "_")

    @property
    def switch(self) -> bool:
        return self.parse is None

    @property
    def section(self) -> tuple[str, ...]:
        """The nested option section (``("neuron",)``; ``()`` for a top-level field)."""
        return self.path[:-1]

    @property
    def field(self) -> str:
        return self.path[-1]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        text = self.help.replace("%", "%%")
        if self.switch:
            parser.add_argument(self.name, action="store_true", default=None, help=text)
        else:
            extra = {"metavar": self.metavar} if self.metavar else {}
            parser.add_argument(self.name, type=self.parse, default=None, help=text, **extra)


def declared_flags(cls, extra: Optional[dict] = None, path: tuple[str, ...] = ()) -> list[Flag]:
    """The flags of the dataclass ``cls``: one per declared field (see the module docstring),
    in field order; fields holding a nested options dataclass (``TrainConfig.neuron``) are
    sections whose flags follow. ``extra``: ``{field: metadata}`` for undeclared fields."""
    hints = typing.get_type_hints(cls)
    flags: list[Flag] = []
    for f in fields(cls):
        default = field_default(f)
        if dataclasses.is_dataclass(default):
            flags += declared_flags(type(default), path=path + (f.name,))
            continue
        meta = dict(f.metadata) if "help" in f.metadata else dict((extra or {}).get(f.name, {}))
        if "help" not in meta or meta.get("cli", True) is False:
            continue
        flags += _field_flags(f.name, hints[f.name], default, meta, path + (f.name,))
    return flags


def _field_flags(name: str, annotation, default, meta: dict, path: tuple[str, ...]) -> list[Flag]:
    kind = _value_type(annotation)
    if kind is bool and "parse" not in meta:
        on = default is not True
        flag = meta.get("flag") or ("--" if on else "--no-") + name.replace("_", "-")
        flags = [Flag(flag, path, meta["help"], const=on)]
    else:
        flag = meta.get("flag") or "--" + name.replace("_", "-")
        parse = meta.get("parse") or (kind if kind in (int, float, str) else str)
        flags = [Flag(flag, path, help_text(meta, default), parse, metavar=meta.get("metavar"),
                      read=meta.get("read"))]
    for switch, value, text in meta.get("switches", ()):
        flags.append(Flag(switch, path, text, const=value))
    return flags


def _value_type(annotation):
    """``Optional[float]`` -> ``float``; ``int`` -> ``int``; anything else as it is."""
    if typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def help_text(meta: dict, default) -> str:
    """The field's help, its ``choices`` (registered names, read now) and its default."""
    text = meta["help"]
    names = meta.get("choices")
    if names is not None:
        text = f"{text}: {' | '.join(names())}"
    shown = meta.get("none_means", "none") if default is None else default
    if isinstance(shown, (list, tuple)):
        shown = ",".join(map(str, shown)) or "none"
    return f"{text} (default: {shown})"


def add_flags(parser: argparse.ArgumentParser, flags: Iterable[Flag]) -> None:
    for flag in flags:
        flag.add_to(parser)


def given_values(args: argparse.Namespace, flags: Iterable[Flag]) -> dict:
    """The values of the ``flags`` given on the command line, as a nested mapping for
    ``overlay`` (``{"epochs": 3, "neuron": {"v_reset": None}}``); a flag the parser does not
    have counts as not given. Flags later in ``flags`` win (a switch after its value flag)."""
    values: dict = {}
    for flag in flags:
        given = getattr(args, flag.dest, None)
        if given is None or (flag.switch and not given):
            continue
        if flag.switch:
            value = flag.const
        else:
            value = flag.read(given) if flag.read is not None else given
        node = values
        for key in flag.section:
            node = node.setdefault(key, {})
        node[flag.field] = value
    return values


def flags_given(args: argparse.Namespace, flags: Iterable[Flag]) -> list[str]:
    """The names of the ``flags`` given on the command line, in order."""
    return [f.name for f in flags if getattr(args, f.dest, None) not in (None, False)]


def without(flags: Iterable[Flag], names: Iterable[str] = (),
            sections: Iterable[str] = ()) -> list[Flag]:
    """``flags`` less those named in ``names`` and those of the option ``sections``."""
    names, sections = set(names), set(sections)
    return [f for f in flags
            if f.name not in names and not (f.section and f.section[0] in sections)]
