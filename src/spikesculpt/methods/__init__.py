"""Training methods: each is a ``Method`` (a callback plus optimizer hooks) built from shared parts.

    from spikesculpt.methods import create_method
    esl = create_method("esl", density=0.1)         # options: see SparseConfig
    model = esl.prepare_model(model)                # masks drawn, pruned weights zeroed
    optimizer = torch.optim.Adam(model.parameters())
    esl.attach(model, optimizer, total_steps=len(loader) * epochs)
    for x, y in loader: ...; loss.backward(); optimizer.step()   # rewiring happens in the hooks

Registered: ``dense``; the sparse methods ``static``, ``set``, ``rigl``, ``esl``
(``methods/dynamic/``); ``genetic`` (gene-encoded layers, ``methods/genetic/``) and ``lowrank``
(its parameter-matched low-rank baseline, same folder); ``ticket``
(training under a fixed mask, ``methods/tickets/``). The training loop builds them with
``build_method(config)``.
"""

import copy

from spikesculpt.core.errors import UserError
from spikesculpt.core.options import overlay_dataclass
from spikesculpt.methods import (
    dense,  # noqa: F401,E402
    genetic,  # noqa: F401,E402
    tickets,  # noqa: F401,E402
)
from spikesculpt.methods.base import Method  # noqa: F401
from spikesculpt.methods.dynamic import SparseMethod  # noqa: F401,E402
from spikesculpt.methods.registry import METHODS, register_method  # noqa: F401


def build_method(config) -> Method:
    """The method named by ``config.method``, configured from ``config`` (a ``TrainConfig``;
    the method's defaults fill its unset options, ``config`` itself is not changed)."""
    return METHODS.get(config.method).from_config(resolved_config(config))


def resolved_config(config):
    """A copy of ``config`` (a ``TrainConfig``) whose method options section has the method's
    defaults in place of the options left unset (``Method.resolve_options``); ``config`` is
    not changed. What a run hashes and saves as config.yaml."""
    cls = METHODS.get(config.method)
    resolved = copy.deepcopy(config)
    if cls.config_section is not None:
        section = getattr(resolved, cls.config_section)
        setattr(resolved, cls.config_section, cls.resolve_options(section))
    return resolved


def create_method(name: str, seed: int = 0, **options) -> Method:
    """Build method ``name`` for use in your own loop; ``options`` are its config fields
    (for sparse methods the fields of ``SparseConfig``: density, init, grow, update_every,
    drop_fraction, update_until, dense_first, dense_last; for ``ticket``: ``mask``, a mask
    file or a ``Mask``)."""
    cls = METHODS.get(name)
    if cls.options_class is None:
        if options:
            raise UserError(f"method {name!r} takes no options, got {sorted(options)}")
        return cls.from_options(None, seed)
    values = overlay_dataclass(cls.options_class(), options, f"{name} options").validate()
    return cls.from_options(values, seed)


__all__ = ["METHODS", "Method", "SparseMethod", "build_method", "create_method",
           "register_method", "resolved_config"]
