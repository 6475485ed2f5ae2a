"""Rewind snapshots: the training state at iteration k, restored exactly for every ticket.

Late rewinding (Frankle, Dziugaite, Roy, Carbin, *Linear mode connectivity and the lottery
ticket hypothesis*, ICML 2020): a ticket is trained not from the initial weights θ_0 but from
θ_k, the weights of the dense run after k iterations, and then for the remaining iterations of
the same schedule. Kim et al. (ECCV 2022) rewind SNNs to epoch 20 of 300; their code copies only
the weights, so BatchNorm statistics and the optimizer's state (Adam moments, momentum) restart
from scratch — a defect we do not repeat. A ``Snapshot`` holds, at iteration k:

- ``model``: a copy of every ``state_dict`` tensor (weights, biases, BatchNorm running mean,
  variance and batch count, PLIF time constants);
- ``optimizer``: a copy of ``optimizer.state_dict()`` (per-parameter state and param-group
  hyper-parameters, e.g. the current learning rate) with the parameter *names* of every slot,
  so a snapshot is never applied to another model by position;
- ``scheduler``: the learning-rate scheduler's state;
- ``step``: k. Restoring sets the trainer to epoch ``k // steps_per_epoch`` and skips the
  ``k % steps_per_epoch`` batches of that epoch already trained (same data order), so the ticket
  trains exactly iterations k+1 .. end of the original schedule (the scheduler steps once per
  epoch, never twice).

Copies of tensors, not ``deepcopy`` of modules (hooked modules do not deep-copy reliably). With a
mask, restoring zeroes the pruned weights and their optimizer state (``MaskEnforcer``).

``--rewind`` syntax: ``Nit`` (iterations = optimizer steps) or ``Nep`` (epochs); ``0it`` (or
``0``) rewinds to the initialisation (Frankle & Carbin, ICLR 2019). The point must lie before
the end of training.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Callable, Optional

import torch

from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write
from spikesculpt.train.callbacks import Callback

_REWIND = re.compile(r"^\s*(\d+)\s*(it|ep)?\s*$")


def parse_rewind(spec) -> tuple[int, str]:
    """``"500it"`` -> ``(500, "it")``, ``"1ep"`` -> ``(1, "ep")``, ``"0"`` -> ``(0, "it")``."""
    match = _REWIND.match(str(spec)) if isinstance(spec, (str, int)) \
        and not isinstance(spec, bool) else None
    if match is None or (match.group(2) is None and int(match.group(1)) != 0):
        raise UserError(f"rewind point {spec!r} is not Nit (iterations) or Nep (epochs); pass "
                        f"e.g. --rewind 1ep, --rewind 500it or --rewind 0it (initialisation)")
    return int(match.group(1)), match.group(2) or "it"


def rewind_step(spec, steps_per_epoch: int, epochs: int) -> int:
    """The rewind point in optimizer steps; ``UserError`` if it is not before the end."""
    n, unit = parse_rewind(spec)
    step = n * steps_per_epoch if unit == "ep" else n
    total = steps_per_epoch * epochs
    if step >= total:
        raise UserError(f"rewind point {spec} (iteration {step}) is not before the end of "
                        f"training ({epochs} epochs x {steps_per_epoch} steps = {total} "
                        f"iterations); rewind earlier (e.g. --rewind 0it) or train longer")
    return step


def param_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """The parameter name of every optimizer slot, group by group."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [[names.get(id(p), "?") for p in group["params"]] for group in optimizer.param_groups]


class Snapshot:
    def __init__(self, step: int, model: dict, optimizer: dict, scheduler: dict,
                 names: list[list[str]]):
        self.step = int(step)
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.names = names

    @classmethod
    def capture(cls, trainer) -> "Snapshot":
        model = {k: v.detach().clone().cpu() for k, v in trainer.model.state_dict().items()}
        optimizer = copy.deepcopy(trainer.optimizer.state_dict())
        return cls(trainer.step, model, optimizer, copy.deepcopy(trainer.scheduler.state_dict()),
                   param_names(trainer.model, trainer.optimizer))

    def restore(self, trainer, enforcer=None) -> None:
        """Put ``trainer`` (model, optimizer, scheduler, position) back to iteration ``step``."""
        names = param_names(trainer.model, trainer.optimizer)
        if names != self.names or set(self.model) != set(trainer.model.state_dict()):
            raise UserError("the rewind snapshot was taken from another model (parameter names "
                            "differ); start the search in a new directory")
        trainer.model.load_state_dict(self.model)
        # load_state_dict may alias the given tensors: hand it a copy, keep the snapshot intact
        trainer.optimizer.load_state_dict(copy.deepcopy(self.optimizer))
        trainer.scheduler.load_state_dict(copy.deepcopy(self.scheduler))
        spe = trainer.steps_per_epoch
        trainer.step = self.step
        trainer.epoch = self.step // spe
        trainer.skip_batches = self.step % spe
        if enforcer is not None:
            enforcer.apply_weights()
            enforcer.reset_state()

    # ------------------------------------------------------------------ storage
    def state_dict(self) -> dict:
        return {"step": self.step, "model": self.model, "optimizer": self.optimizer,
                "scheduler": self.scheduler, "names": self.names}

    def save(self, path: Path) -> Path:
        return atomic_write(path, lambda tmp: torch.save(self.state_dict(), tmp))

    @classmethod
    def load(cls, path: Path) -> "Snapshot":
        try:
            s = torch.load(path, map_location="cpu", weights_only=True)
            return cls(s["step"], s["model"], s["optimizer"], s["scheduler"], s["names"])
        except Exception as exc:
            raise UserError(f"cannot read the rewind snapshot {path} ({type(exc).__name__}); it "
                            f"is corrupt — start the search in a new directory") from None


class SnapshotCallback(Callback):
    """Captures the ``Snapshot`` at iteration ``step`` (just before iteration step+1 runs).

    At an epoch boundary (``step = e · steps_per_epoch``) that is ``on_epoch_start(e)``, after the
    scheduler stepped; inside an epoch, ``on_step_end`` of iteration ``step``.
    ``on_capture(snapshot)`` is called once (e.g. to write it to disk).
    """

    def __init__(self, step: int, on_capture: Optional[Callable[[Snapshot], None]] = None,
                 snapshot: Optional[Snapshot] = None):
        self.step = int(step)
        self.on_capture = on_capture
        self.snapshot = snapshot

    def _take(self, trainer) -> None:
        self.snapshot = Snapshot.capture(trainer)
        if self.on_capture is not None:
            self.on_capture(self.snapshot)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if self.snapshot is None and trainer.step == self.step:
            self._take(trainer)

    def on_step_end(self, trainer) -> None:
        if self.snapshot is None and trainer.step == self.step \
                and self.step % trainer.steps_per_epoch != 0:
            self._take(trainer)
