"""``Strategy``: how one level of a ticket search is found and trained.

A strategy implements ``run_level(search, K)`` with the helpers of ``LotterySearch`` (build the
model, load the level's mask, train a phase with checkpoints, write the level's outputs) and may
override ``check`` (bad input before anything is written), ``ticket_start`` (where a ticket's
training starts: the rewind snapshot or the initialisation) and ``control`` (the random
re-initialisation and random pruning branches, ``controls.py``).
"""

from __future__ import annotations

from pathlib import Path

from spikesculpt.experiments.lottery.controls import train_control


class Strategy:
    name = "strategy"
    uses_rewind = False        # tickets start from the rewind snapshot (IMP, early-bird)
    allows_early_time = False
    allows_binary = False

    def check(self, search, model) -> None:
        """Raise ``UserError`` for settings this strategy cannot run (nothing written yet)."""

    def run_level(self, search, level: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def ticket_start(self, level: int) -> str:
        return "rewind" if self.uses_rewind and level > 0 else "init"

    def control(self, search, kind: str, level: int, folder: Path) -> None:

        train_control(search, kind, level, folder)
