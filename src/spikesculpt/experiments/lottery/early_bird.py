"""``early-bird``: IMP whose search trainings stop once the pruning mask has settled.

You et al., *Drawing early-bird tickets*, ICLR 2020; used on SNNs by Kim et al. (ECCV 2022,
q = 5, τ = 0.02); the detector (FIFO of per-epoch masks, normalised Hamming distance):
``methods/tickets/early_bird.py``. At the end of every epoch of a search training, the mask
that pruning would give now (``rate`` of the level's remaining weights, by magnitude) is drawn;
when the detector converges, that mask becomes the next level's mask and the search training
of this level stops (or, when the level's ticket accuracy is also wanted, training goes on for
the accuracy only; the search time counts up to the stop).

From the papers: q, τ, FIFO of per-epoch masks, Hamming distance. Our choices: unstructured
magnitude masks (You et al. prune channels by BatchNorm scale; Kim et al. use magnitudes like
IMP), and no stop before the rewind point has been passed.
"""

from __future__ import annotations

from spikesculpt.experiments.lottery.context import LevelContext
from spikesculpt.experiments.lottery.imp import IMP
from spikesculpt.experiments.lottery.registry import register_strategy
from spikesculpt.methods.tickets.early_bird import EarlyBirdDetector


@register_strategy("early-bird")
class EarlyBird(IMP):
    """IMP with early-bird stopping of every search training (You et al. 2020; q, τ)."""

    name = "early-bird"

    def detector(self, ctx: LevelContext) -> EarlyBirdDetector:
        return EarlyBirdDetector(ctx.lottery.eb_q, ctx.lottery.eb_tau)
