"""Controls: is a ticket better than its mask with other weights, or other masks with its weights?

Run as branches of a search (``--controls reinit,random``; stored in
``level_K/control_<kind>/``; a finished search gains controls without recomputing its levels).
Both use the ticket's training schedule and data order:

- ``reinit`` (random re-initialisation, Frankle & Carbin 2019): the level's mask, the weights
  drawn afresh from the model's initialisation with another seed, trained from iteration 0 for
  the full schedule (fresh optimizer state and BatchNorm statistics) — at least as many
  iterations as the ticket gets after rewinding, so the control is not handicapped;
- ``random`` (random pruning, Frankle & Carbin 2019; Kim et al. 2022): a uniformly random mask
  with exactly the ticket's per-layer connection counts, on the ticket's own starting point (the
  rewind snapshot for IMP / early-bird, the initialisation for score tickets), trained like the
  ticket.

Seeds (``methods/tickets/controls.py``): the re-initialisation uses ``control_seed(seed,
level)`` for the weights only (the data order stays the run's); the random mask draws from a
generator seeded by (seed, level). For ``multilevel`` the controls replace the embedding ticket
only (``multilevel.py``).
"""

from __future__ import annotations

import copy

from spikesculpt.experiments.lottery.context import LevelContext
from spikesculpt.methods.tickets.controls import control_seed, random_like
from spikesculpt.sparse import Mask


def train_control(ctx: LevelContext) -> None:
    """Train and write control ``ctx.control`` of level ``ctx.level``'s ticket."""
    ticket = Mask.load(ctx.level_folder / "mask.safetensors")
    config = copy.deepcopy(ctx.train)
    seed = ctx.train.seed
    if ctx.control == "reinit":
        model = ctx.build_model(config, init_seed=control_seed(seed, ctx.level))
        mask, start = ticket, "init"
    else:
        model = ctx.build_model(config)
        mask, start = random_like(ticket, seed, ctx.level), ctx.start
    mask.validate(model)
    phase = ctx.train_phase("train", model, mask, start, config=config)
    ctx.write(mask, phase.trainer.model, phase)
