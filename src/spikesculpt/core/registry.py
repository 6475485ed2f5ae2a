"""A small name -> factory registry, shared by models, neurons, surrogates, datasets and methods.

    MODELS = Registry("model")

    @MODELS.register("mlp")
    def mlp(...): ...

    MODELS.get("mlp")      # the factory
    MODELS.get("nope")     # UserError: unknown model 'nope'; choose one of: mlp, ...
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, TypeVar

from spikesculpt.core.errors import UserError

F = TypeVar("F", bound=Callable)


class Registry:
    """Maps names to factories; unknown names raise a ``UserError`` listing the valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def decorator(obj: F) -> F:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> Callable:
        try:
            return self._items[name]
        except KeyError:
            raise UserError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
