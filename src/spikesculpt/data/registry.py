"""The dataset registry: ``name`` or ``name:ARG`` -> ``DataSplits``.

    @register_dataset("digits")
    def digits(arg, *, seed, val_fraction, data_root=None, timesteps=None) -> DataSplits: ...

    load_dataset("digits", seed=0)
    load_dataset("npz:/data/mine.npz", seed=0)      # arg = "/data/mine.npz"

A factory receives the text after the first colon as ``arg`` (None without one), the run's
``seed`` (validation split, augmentation), ``val_fraction``, the ``--data-root`` folder and the
run's ``timesteps`` (for data binned into frames); it returns ``DataSplits``. A factory that
declares a ``download`` keyword also receives the ``--download`` flag (datasets that can fetch
their files); the others never see it.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional

from spikesculpt.core.errors import UserError
from spikesculpt.core.registry import Registry
from spikesculpt.data.base import DataSplits

DATASETS = Registry("dataset")


def register_dataset(name: str) -> Callable:
    return DATASETS.register(name)


def split_name(name: str) -> tuple[str, Optional[str]]:
    """``"npz:/a/b.npz"`` -> ``("npz", "/a/b.npz")``; ``"digits"`` -> ``("digits", None)``."""
    if not isinstance(name, str) or not name:
        raise UserError(f"dataset must be a name such as digits or npz:PATH, got {name!r}")
    base, sep, arg = name.partition(":")
    return base, (arg if sep else None)


def load_dataset(name: str, *, seed: int = 0, val_fraction: float = 0.1,
                 data_root: Optional[str] = None, timesteps: Optional[int] = None,
                 download: bool = False) -> DataSplits:
    """Load dataset ``name`` (``spikesculpt list datasets``) as train / validation / test."""
    base, arg = split_name(name)
    factory = DATASETS.get(base)
    if not 0 < val_fraction < 1:
        raise UserError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    extra = {}
    if "download" in inspect.signature(factory).parameters:
        extra["download"] = bool(download)
    return factory(arg, seed=seed, val_fraction=val_fraction, data_root=data_root,
                   timesteps=timesteps, **extra)
