"""The random draws of the lottery controls (Frankle & Carbin 2019; Kim et al. 2022).

- ``control_seed(seed, level)``: the seed of the random re-initialisation control's weights
  (the data order stays the run's);
- ``random_like(mask, seed, level)``: the random pruning control's mask, uniformly random with
  exactly ``mask``'s active count in every layer, from a generator seeded by (seed, level).

Each control has its own stream, so a control never shares random numbers with the ticket or
with the other control. Training the controls is the search's job
(``experiments/lottery/controls.py``).
"""

from __future__ import annotations

import torch

from spikesculpt.sparse import Mask, random_mask

REINIT_STREAM = 104_729
RANDOM_STREAM = 130_363


def control_seed(seed: int, level: int) -> int:
    """The initialisation seed of level ``level``'s re-initialisation control."""
    return (seed * 1_000_003 + REINIT_STREAM + 101 * level) % (2**31)


def random_like(mask: Mask, seed: int, level: int) -> Mask:
    """A random mask with exactly ``mask``'s active count in every layer (seeded)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + RANDOM_STREAM + 101 * level)
    shapes = {n: tuple(m.shape) for n, m in mask.items()}
    counts = {n: mask.active(n) for n in mask}
    return random_mask(shapes, counts, g)
