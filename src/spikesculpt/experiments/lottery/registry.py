"""The strategy registry of ``spikesculpt lottery``: ``name -> Strategy class``."""

from __future__ import annotations

from typing import Callable

from spikesculpt.core.registry import Registry

STRATEGIES = Registry("lottery strategy")


def register_strategy(name: str) -> Callable:
    return STRATEGIES.register(name)
