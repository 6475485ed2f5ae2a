"""Argument parsing shared by the sub-commands; parse errors are one line, exit status 2."""

from __future__ import annotations

import argparse
import sys

import yaml

from spikesculpt.core.errors import UserError
from spikesculpt.core.options import positive_int  # noqa: F401  (re-exported: argparse type)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message}; see {self.prog} --help\n")
        raise SystemExit(2)


def key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as YAML (``hidden=[128,128]``, ``width=0.5``)."""

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, _, value = text.partition("=")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"cannot read the value of {text!r}") from None


def read_yaml_config(path: str) -> dict:

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise UserError(f"config file {path} not found; check the path given to --config") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read config file {path} ({type(exc).__name__}); it must be a "
                        f"YAML mapping of config keys") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must be a YAML mapping of config keys, "
                        f"got {type(data).__name__}")
    return data.get("config", data) if "config_hash" in data else data
