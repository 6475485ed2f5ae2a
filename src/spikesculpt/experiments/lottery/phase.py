"""One training phase of a level: a model trained with a fixed mask, resumable from an epoch
checkpoint.

A level trains one or more phases (IMP with ``--early-time``: a search at T' and the ticket at
T; ``multilevel``: the embedding's score search and the rest). Each phase has its own epoch
checkpoint ``<level folder>/checkpoint_<name>.pt``: a rerun loads it and goes on from the epoch
after, and it is deleted when the phase ends. A phase starts either from the model's
initialisation (``"init"``) or from the rewind snapshot (``"rewind"``: weights, BatchNorm
statistics, optimizer and scheduler state at iteration k, then the mask enforced). With
``rescale`` (``--rescale``) a fresh phase then scales the kept weights of its BN-free masked
layers back to the squared norm of its dense start (``methods.tickets.rescale``): the same rule
for tickets and controls.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write
from spikesculpt.methods.tickets.rescale import rescale_to_dense_norm, squared_norms
from spikesculpt.methods.tickets.snapshot import Snapshot
from spikesculpt.methods.tickets.ticket import PhaseClock, StopPhase, TicketCallback
from spikesculpt.sparse import Mask
from spikesculpt.train.trainer import Trainer


@dataclass
class Phase:
    trainer: Trainer
    metrics: Optional[dict]      # None when a search-only run stopped early
    clock: PhaseClock
    rescaled: Optional[dict] = None   # {layer: factor} of --rescale (fresh phases only)


def train_phase(folder: Path, name: str, config: TrainConfig, model, mask: Optional[Mask],
                start: str, callbacks: list, clock: PhaseClock, splits, progress: bool,
                snapshot: Callable[[], Snapshot], rescale: bool = False) -> Phase:
    """Train ``model`` on ``splits`` (``mask`` enforced, none if None) from ``start``;
    ``snapshot()`` gives the rewind snapshot when ``start == "rewind"``. ``config`` is copied:
    a callback may change the trainer's (early-time sets T'). ``rescale``: see the module doc."""
    folder.mkdir(parents=True, exist_ok=True)
    ticket = TicketCallback(mask)
    rescale = rescale and mask is not None
    dense = squared_norms(dict(model.named_parameters()), mask.names()) \
        if rescale and start == "init" else None   # before the enforcer zeroes the pruned
    trainer = Trainer(model, splits, copy.deepcopy(config), [ticket, *callbacks, clock],
                      progress=progress)
    ckpt = folder / f"checkpoint_{name}.pt"
    rescaled = None
    if ckpt.is_file():
        try:
            state = torch.load(ckpt, map_location=trainer.device, weights_only=True)
            trainer.load_state_dict(state)
        except Exception as exc:
            raise UserError(f"cannot resume from {ckpt}: {type(exc).__name__}; remove it to "
                            f"restart the level") from None
    else:
        if start == "rewind":
            snap = snapshot()
            dense = squared_norms(snap.model, mask.names()) if rescale else None
            snap.restore(trainer, ticket.enforcer)
        if dense is not None:
            rescaled = rescale_to_dense_norm(trainer.model, mask, dense)

    def save(t: Trainer) -> None:
        atomic_write(ckpt, lambda tmp: torch.save(t.state_dict(), tmp))

    try:
        metrics = trainer.fit(on_epoch_done=save)
    except StopPhase:
        metrics = None
    ckpt.unlink(missing_ok=True)
    return Phase(trainer, metrics, clock, rescaled)
