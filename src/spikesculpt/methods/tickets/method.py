"""``ticket``: train a model under a given, fixed mask (a lottery ticket, or any sparse mask).

``prepare_model`` checks the mask against the model (every name a parameter, shapes equal) and
zeroes the pruned weights; ``attach`` (called by the trainer, or by you in your own loop) keeps
them dead with a ``sparse.MaskEnforcer``: after every optimizer step the pruned weights are
exactly 0, and their gradients and optimizer state (momentum, Adam moments) are zeroed, so
neither momentum nor weight decay can revive them. The mask never changes.

The mask comes from anywhere: ``level_K/mask.safetensors`` of ``spikesculpt lottery``,
``masks.safetensors`` of a sparse run, a ``Mask`` you built, or ``magnitude_ticket(model,
density)`` (one-shot magnitude pruning of a trained model, ``pruning.py``). Layers absent from
the mask stay dense.

Like the tickets of ``spikesculpt lottery`` (``ticket.TicketCallback``, docs/lottery.md), the
kept weights are not rescaled by 1/√density: a ticket is defined by its weights θ ⊙ m. Like
``dense`` and the sparse methods, a fresh run wakes the layers that are silent on the first
training batch (``init_firing``, ``Method.on_fit_start``; measured on digits, MLP 64-32-10
under a random half mask, T = 2, lr 1e-3, 10 epochs, seeds 0 / 1: 45.7 / 32.6% test with it,
17.8 / 30.1% without, the hidden layer firing at 0.16 against 0.02-0.04). Layers that already
fire are left alone; ``init_firing=0`` (``--init-firing 0``) trains the weights exactly as given, as
``spikesculpt lottery`` does. To train a lottery ticket from its initialisation θ_0, build the
model with the search's seed; to rewind it to θ_k, load those weights first.

    spikesculpt train --method ticket --mask runs/lottery-imp-.../level_3/mask.safetensors
    spikesculpt.fit(model, splits, method="ticket", mask=mask, epochs=30)
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.methods.base import Method
from spikesculpt.methods.registry import register_method
from spikesculpt.methods.tickets.options import MASK_HELP, TicketConfig
from spikesculpt.methods.tickets.pruning import layer_density, model_density
from spikesculpt.sparse import Mask, MaskEnforcer

MASK_FILES = ("masks.safetensors", "mask.safetensors")  # a sparse run's, a lottery level's


def load_ticket_mask(source) -> Mask:
    """``source`` as a ``Mask``: a Mask itself, a mask file, or a folder holding one
    (``MASK_FILES``, in that order)."""
    if isinstance(source, Mask):
        return source
    path = Path(source)
    if path.is_dir():
        found = [path / name for name in MASK_FILES if (path / name).is_file()]
        if not found:
            raise UserError(f"{path} holds no {' or '.join(MASK_FILES)}; pass --mask FILE "
                            f"({MASK_HELP})")
        path = found[0]
    elif not path.is_file():
        raise UserError(f"mask file {path} does not exist; pass --mask FILE ({MASK_HELP})")
    return Mask.load(path)


def mask_digest(mask: Mask) -> str:
    """SHA-256 of a mask's contents (names, shapes, bits; independent of file and order)."""
    h = hashlib.sha256()
    for name in sorted(mask.names()):
        m = mask[name].detach().cpu()
        h.update(json.dumps([name, list(m.shape)]).encode())
        h.update(np.packbits(m.numpy().reshape(-1).astype(np.uint8)).tobytes())
    return h.hexdigest()


@register_method("ticket")
class TicketMethod(Method):
    """Training under a fixed mask (a lottery ticket or any sparse mask), enforced every step."""

    name = "ticket"
    options_class = TicketConfig
    config_section = "ticket"
    calibrates_init = True       # silent layers woken at the start (init_firing); no rescaling

    def __init__(self, options: Optional[TicketConfig] = None, seed: int = 0):
        options = (options or TicketConfig()).validate()
        self.source = options.source()
        self.mask = load_ticket_mask(self.source)
        self.mask_sha256 = mask_digest(self.mask)
        if options.mask_sha256 is not None and options.mask_sha256 != self.mask_sha256:
            raise UserError(f"the mask {self._where()} changed since this run was configured "
                            f"(SHA-256 {self.mask_sha256[:12]}..., recorded "
                            f"{options.mask_sha256[:12]}...); restore it or start a new run")
        self.model: Optional[nn.Module] = None
        self.enforcer: Optional[MaskEnforcer] = None

    @classmethod
    def from_options(cls, options, seed: int = 0) -> "TicketMethod":
        return cls(options, seed)

    @classmethod
    def resolve_options(cls, options: TicketConfig) -> TicketConfig:
        """A copy of ``options`` recording the mask's contents (``mask_sha256``): the run's
        hash names the mask by what it holds, not by its path."""
        if options.mask_sha256 is not None:
            return options
        digest = mask_digest(load_ticket_mask(options.validate().source()))
        return dataclasses.replace(options, mask_sha256=digest)

    def _where(self) -> str:
        return "given" if isinstance(self.source, Mask) else str(self.source)

    # ------------------------------------------------------------------ the mask
    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Check the mask against ``model`` and zero its pruned weights (nothing rescaled)."""
        self.mask.validate(model)
        self.mask.apply_(model)
        self.model = model
        return model

    def attach(self, model, optimizer, total_steps, steps_per_epoch=None) -> "TicketMethod":
        if self.model is not model:
            self.prepare_model(model)
        self.mask = self.mask.to(next(model.parameters()).device)
        self.enforcer = MaskEnforcer(model, optimizer, self.mask).attach()
        return self

    # ------------------------------------------------------------------ outputs
    def params(self) -> dict:
        return {"mask": None if isinstance(self.source, Mask) else str(self.source),
                "mask_sha256": self.mask_sha256, "masked_layers": self.mask.names()}

    def on_fit_end(self, trainer, metrics: dict) -> None:
        super().on_fit_end(trainer, metrics)
        metrics["mask_density"] = model_density(trainer.model, self.mask)
        metrics["layer_mask_density"] = layer_density(trainer.model, self.mask)

    def save_artifacts(self, folder: Path) -> None:
        """The mask trained under, as ``masks.safetensors`` (the name sparse runs use)."""
        self.mask.save(Path(folder) / "masks.safetensors")

