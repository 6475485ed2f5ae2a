"""``ConnectionAges``: when each connection of a rewired layer was born and last dropped.

Per masked layer, two tensors of the weight's shape, beside the initial mask it is given (held,
not copied):

- ``born``: index of the mask update that last grew the connection (0: present from the start
  or never grown), int16;
- ``dropped``: index of the update that last dropped it (-1: never), int16.

A connection has ever been active iff it was in the initial mask or was grown (``born > 0``).
Memory: 4 bytes per connection of the masked layers, on the mask's device; int16
indices are widened to int32 at the 32,767th update. Update indices count from 1. From them
every update reports how the rewiring explores (the measurements behind ESL's churn diagnosis,
issue 14):

- ``dropped_newborn``: fraction of the connections dropped now that were grown at the previous
  update. Regrown weights start at zero, so after ``T_iter`` optimizer steps they are still among
  the smallest ``|w|``; a high value means the rewiring churns: it drops what it just grew;
- ``grown_returning``: fraction of the connections grown now that had been dropped before
  (the connections just dropped have the largest gradients and come back);
- ``mean_age``: mean age of the active connections after the update, in updates;
- ``explored``: fraction of all connections of the masked layers that have ever been active:
  the in-time over-parameterisation rate of Liu et al. (ICML 2021, "Do we actually need dense
  over-parameterization?"), which they find tracks the accuracy of dynamic sparse training.

``protected(name, grace)`` is the set a grace period shields from dropping: active connections
grown within the last ``grace`` updates (ours, see docs/methods.md).
"""

from __future__ import annotations

from typing import Optional

import torch

from spikesculpt.sparse import Mask


class ConnectionAges:
    """Birth and death records of every connection of a ``Mask``'s layers."""

    def __init__(self, initial: Mask):
        self.initial = initial
        self.born = {n: torch.zeros(m.shape, dtype=torch.int16) for n, m in initial.items()}
        self.dropped = {n: torch.full(m.shape, -1, dtype=torch.int16) for n, m in initial.items()}
        self.update = 0           # index of the last update (0: none yet)
        self._now: dict = {}      # counts of the update in progress
        # per layer [Σ born over the active connections, active, ever active], kept up to date
        # by ``record`` (O(connections changed) per update); None: recount at the next summary
        self._totals: Optional[dict[str, list[int]]] = None

    def _on(self, name: str, device: torch.device) -> None:
        if self.born[name].device != device:
            self.born[name] = self.born[name].to(device)
            self.dropped[name] = self.dropped[name].to(device)

    def begin_update(self) -> None:
        self.update += 1
        if self.update == torch.iinfo(torch.int16).max:  # very many updates: widen, once
            self.born = {n: t.int() for n, t in self.born.items()}
            self.dropped = {n: t.int() for n, t in self.dropped.items()}
        self._now = {"dropped": 0, "dropped_newborn": 0, "grown": 0, "grown_returning": 0}

    def protected(self, name: str, grace: int) -> torch.Tensor:
        """Bool, the layer's shape: connections grown within the last ``grace`` updates."""
        born = self.born[name]
        return (born > 0) & (born >= self.update - grace)

    def record(self, name: str, dropped: torch.Tensor, grown: torch.Tensor) -> None:
        """Book this update's flat ``dropped`` and ``grown`` indices of layer ``name``."""
        self._on(name, dropped.device)
        born = self.born[name].view(-1)
        last_drop = self.dropped[name].view(-1)
        if self._totals is not None:  # before the births below overwrite ``born``
            totals = self._totals[name]
            initial = self.initial[name].reshape(-1).to(born.device)
            first_time = (born[grown] == 0) & ~initial[grown]
            totals[0] += self.update * len(grown) - int(born[dropped].sum())
            totals[1] += len(grown) - len(dropped)
            totals[2] += int(first_time.sum())
        if self.update > 1:
            self._now["dropped_newborn"] += int((born[dropped] == self.update - 1).sum())
        self._now["grown_returning"] += int((last_drop[grown] >= 0).sum())
        self._now["dropped"] += len(dropped)
        self._now["grown"] += len(grown)
        last_drop[dropped] = self.update
        born[grown] = self.update

    def _recount(self, mask: Mask) -> dict[str, list[int]]:
        """[Σ born over the active connections, active, ever active] of every layer, counted
        from ``mask`` and the birth records."""
        totals = {}
        for name, m in mask.items():
            self._on(name, m.device)
            on, born = m.bool(), self.born[name]
            ever = (born > 0) | self.initial[name].to(born.device)
            totals[name] = [int(torch.where(on, born, 0).sum()), int(on.sum()), int(ever.sum())]
        return totals

    def summary(self, mask: Mask) -> dict:
        """This update's exploration figures (module docstring), for the rewiring record.
        ``mask``: the masks the recorded updates produced (the method's own). The first call
        counts them; later calls use the totals ``record`` keeps, so a summary costs O(1)
        rather than a pass over every connection (a rewiring update of a small network is a
        few ms, and at ESL's T_iter its cost is part of the training-time overhead)."""
        if self._totals is None:
            self._totals = self._recount(mask)
        now = self._now
        active = sum(t[1] for t in self._totals.values())
        ages = sum(self.update * t[1] - t[0] for t in self._totals.values())
        ever = sum(t[2] for t in self._totals.values())
        total = sum(m.numel() for _, m in mask.items())
        return {"dropped_newborn": now["dropped_newborn"] / max(1, now["dropped"]),
                "grown_returning": now["grown_returning"] / max(1, now["grown"]),
                "mean_age": ages / max(1, active),
                "explored": ever / max(1, total)}

    @staticmethod
    def run_summary(updates: list[dict]) -> dict:
        """Whole-run figures for metrics.json: the means over updates that changed anything,
        and the final exploration rate."""
        moving = [r for r in updates if r.get("changed")] or updates
        return {"dropped_newborn": sum(r["dropped_newborn"] for r in moving) / len(moving),
                "grown_returning": sum(r["grown_returning"] for r in moving) / len(moving),
                "explored": updates[-1]["explored"]}

    def state_dict(self) -> dict:
        return {"update": self.update,
                "born": {n: t.cpu() for n, t in self.born.items()},
                "dropped": {n: t.cpu() for n, t in self.dropped.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.update = int(state["update"])
        self._totals = None
        for key in ("born", "dropped"):
            target = getattr(self, key)
            for n, t in state[key].items():
                target[n] = t.to(target[n].device).clone()
