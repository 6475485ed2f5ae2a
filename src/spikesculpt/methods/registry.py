"""The method registry: ``name -> Method class`` with ``from_config(TrainConfig)``."""

from __future__ import annotations

from typing import Callable

from spikesculpt.core.registry import Registry

METHODS = Registry("method")


def register_method(name: str) -> Callable:
    return METHODS.register(name)
