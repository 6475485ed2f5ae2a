"""``Strategy``: how one level of a ticket search is found and trained.

The template (``run_level``): the level's ticket is produced by one hook — ``train_dense`` for
the dense level 0 (default: the full mask trained from the initialisation), ``find_ticket`` for
a level K ≥ 1 (every strategy writes its own) — and written by the search's ``ctx.write``.
A strategy sees the search only through the ``LevelContext`` it is handed (``context.py``:
build a model, the level's mask, train a phase, save search results, write the level), never
the ``LotterySearch`` itself.

Other hooks, with defaults: ``level_config`` (the training config of the level's model),
``check`` (bad input, before anything is written), ``ticket_start`` (where a ticket's training
starts: the rewind snapshot or the initialisation) and ``control`` (the random
re-initialisation and random pruning branches, ``controls.py``).

Adding a strategy is one file — a subclass with ``name``, ``find_ticket`` and what it allows,
decorated with ``@register_strategy("name")`` — plus its import in ``__init__.py``; the
options, the ``--strategy`` flag and ``spikesculpt list strategies`` read the registry.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

from spikesculpt.config import TrainConfig
from spikesculpt.experiments.lottery.context import LevelContext
from spikesculpt.experiments.lottery.controls import train_control
from spikesculpt.experiments.lottery.phase import Phase
from spikesculpt.sparse import Mask


@dataclass
class LevelResult:
    """What a level produced: its mask, the model to save, the trained phase (None: not
    trained to the end, ``--evaluate ends``), how the mask was found and extra metrics."""

    mask: Mask
    model: object
    phase: Optional[Phase]
    search_info: Optional[dict] = None
    extra: Optional[dict] = None


class Strategy:
    name = "strategy"
    uses_rewind = False        # tickets start from the rewind snapshot (IMP, early-bird)
    allows_early_time = False
    allows_binary = False
    magnitude_pruning = False  # masks by magnitude pruning: --min-inputs, --rescale apply

    # ------------------------------------------------------------------ the template
    def run_level(self, ctx: LevelContext) -> None:
        """Find and train level ``ctx.level``'s ticket, then write it (the level is done)."""
        result = self.train_dense(ctx) if ctx.level == 0 else self.find_ticket(ctx)
        ctx.write(result.mask, result.model, result.phase, result.search_info, result.extra)

    def train_dense(self, ctx: LevelContext) -> LevelResult:
        """Level 0: the dense network (every connection of ``ctx.layers``) trained normally."""
        config = self.level_config(ctx)
        model = ctx.build_model(config)
        mask = ctx.mask(model)
        phase = ctx.train_phase("train", model, mask, "init", config=config)
        return LevelResult(mask, phase.trainer.model, phase)

    def find_ticket(self, ctx: LevelContext) -> LevelResult:  # pragma: no cover - abstract
        """Level K ≥ 1: find the level's ticket and train it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ other hooks
    def level_config(self, ctx: LevelContext) -> TrainConfig:
        """The training config of level ``ctx.level``'s model (a copy of the run's)."""
        return copy.deepcopy(ctx.train)

    def check(self, ctx: LevelContext, model) -> None:
        """Raise ``UserError`` for settings this strategy cannot run (nothing written yet)."""

    def ticket_start(self, level: int) -> str:
        return "rewind" if self.uses_rewind and level > 0 else "init"

    def control(self, ctx: LevelContext) -> None:
        """Train control ``ctx.control`` of level ``ctx.level`` and write it."""
        train_control(ctx)
