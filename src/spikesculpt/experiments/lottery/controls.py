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

Seeds: the re-initialisation uses ``control_seed(seed, level)`` for the weights only (the data
order stays the run's); the random mask draws from a generator seeded by (seed, level).
For ``multilevel`` the controls replace the embedding ticket only (``multilevel.py``).
"""

from __future__ import annotations

import copy

import torch

from spikesculpt.methods.tickets.ticket import PhaseClock
from spikesculpt.sparse import Mask, random_mask

REINIT_STREAM = 104_729
RANDOM_STREAM = 130_363


def control_seed(seed: int, level: int) -> int:
    return (seed * 1_000_003 + REINIT_STREAM + 101 * level) % (2**31)


def random_like(mask: Mask, seed: int, level: int) -> Mask:
    """A random mask with exactly ``mask``'s active count in every layer (seeded)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + RANDOM_STREAM + 101 * level)
    shapes = {n: tuple(m.shape) for n, m in mask.items()}
    counts = {n: mask.active(n) for n in mask}
    return random_mask(shapes, counts, g)


def train_control(search, kind: str, level: int, folder) -> None:
    ticket = Mask.load(search.level_dir(level) / "mask.safetensors")
    config = copy.deepcopy(search.train)
    if kind == "reinit":
        model = search.build_model(config, init_seed=control_seed(search.train.seed, level))
        mask, start = ticket, "init"
    else:
        model = search.build_model(config)
        mask, start = random_like(ticket, search.train.seed, level), \
            search.strategy.ticket_start(level)
    mask.validate(model)
    phase = search.train_phase(folder, "train", config, model, mask, start, [], PhaseClock())
    search.write_run(folder, mask, phase.trainer.model, phase, {"control": kind, "level": level})
