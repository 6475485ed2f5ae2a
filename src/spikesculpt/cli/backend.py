"""The flags of ``BackendOptions`` (``--backend``, ``--address``, ``--gpus-per-task``), shared by
``spikesculpt sweep`` and ``spikesculpt evolve`` (docs/ray.md)."""

from __future__ import annotations

import argparse

from spikesculpt.cli.flags import Flag, declared_flags, given_values
from spikesculpt.core.options import overlay_dataclass
from spikesculpt.experiments.backend import BackendOptions


def backend_flags() -> list[Flag]:
    return declared_flags(BackendOptions)


def backend_from_args(args: argparse.Namespace) -> BackendOptions:
    """The backend options given on the command line, checked (one-line ``UserError``)."""
    return overlay_dataclass(BackendOptions(), given_values(args, backend_flags()),
                             "command line").validate()
