"""Early-bird tickets: has the pruning mask settled during training?

You, Li, Xu, Fu, Wang, Chen, Baraniuk, Lin, Wang, *Drawing early-bird tickets: towards more
efficient training of deep networks*, ICLR 2020; used on SNNs by Kim et al. (ECCV 2022, q = 5,
τ = 0.02). At the end of every epoch the mask that pruning would give now is drawn; the last q
masks are kept (FIFO). When the largest normalised Hamming distance between the newest mask and
each of the q - 1 before it is below τ, the ticket has been "drawn early".

Normalised Hamming distance (You et al.): ``d(m1, m2) = |m1 xor m2| / n`` over the n
connections of the masked layers. The ``early-bird`` strategy of ``spikesculpt lottery``
(``experiments/lottery/early_bird.py``) stops its search trainings with this detector.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from spikesculpt.sparse import Mask


def mask_distance(a: Mask, b: Mask) -> float:
    """Normalised Hamming distance: differing entries / all entries of the masked layers."""
    if a.names() != b.names():
        raise ValueError("masks over different layers")
    total = sum(a[n].numel() for n in a)
    diff = sum(int((a[n].cpu() != b[n].cpu()).sum()) for n in a)
    return diff / total if total else 0.0


class EarlyBirdDetector:
    """FIFO of the last ``q`` masks; ``converged()`` when max distance to the newest < ``tau``."""

    def __init__(self, q: int = 5, tau: float = 0.02):
        self.q = int(q)
        self.tau = float(tau)
        self.masks: deque = deque(maxlen=self.q)
        self.last_distance: Optional[float] = None

    def update(self, mask: Mask) -> Optional[float]:
        """Add this epoch's mask; return the max distance to the previous ones (None if first)."""
        self.masks.append(mask.clone().to("cpu"))
        if len(self.masks) < 2:
            self.last_distance = None
        else:
            newest = self.masks[-1]
            self.last_distance = max(mask_distance(newest, m) for m in list(self.masks)[:-1])
        return self.last_distance

    def converged(self) -> bool:
        return len(self.masks) == self.q and self.last_distance is not None \
            and self.last_distance < self.tau

    def state_dict(self) -> dict:
        return {"masks": [m.state_dict() for m in self.masks],
                "last_distance": self.last_distance}

    def load_state_dict(self, state: dict) -> None:
        self.masks = deque((Mask({k: v.bool() for k, v in s.items()}) for s in state["masks"]),
                           maxlen=self.q)
        self.last_distance = state["last_distance"]
