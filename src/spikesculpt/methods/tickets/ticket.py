"""Callbacks of one ticket training: a fixed mask, the search recorder, a resumable clock.

- ``TicketCallback(mask)``: the ticket's pruned weights, their gradients and optimizer state
  stay exactly zero (``sparse.MaskEnforcer``: optimizer step hooks). No rescaling of the kept
  weights: a lottery ticket is defined by its *original* (or rewound) values, θ_k ⊙ m
  (Frankle & Carbin 2019) — unlike the sparse-from-scratch methods, which scale kept weights by
  1/√density (``methods.dynamic.base.rescale_kept_weights``); rescaling would make it another
  initialisation and the comparison with the random re-initialisation control meaningless.
- ``SearchRecorder``: derives the next level's mask from the weights during training: at the
  end of the last epoch (IMP), or earlier when the early-bird criterion holds; hands it to
  ``on_found`` once and, for a search-only run, stops training (``StopPhase``).
- ``PhaseClock``: wall time of the epochs (training + validation + the other callbacks), kept
  across resumes — the search time of the early-time benchmark.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from spikesculpt.methods.tickets.pruning import magnitude_prune
from spikesculpt.sparse import Mask, MaskEnforcer
from spikesculpt.train.callbacks import Callback


class StopPhase(Exception):
    """Raised by a callback to end a search-only training run early."""


class TicketCallback(Callback):
    def __init__(self, mask: Optional[Mask]):
        self.mask = mask
        self.enforcer: Optional[MaskEnforcer] = None

    def setup(self, trainer) -> None:
        if self.mask is not None and len(self.mask):
            device = next(trainer.model.parameters()).device
            self.mask = self.mask.to(device)
            self.enforcer = MaskEnforcer(trainer.model, trainer.optimizer, self.mask).attach()


class PhaseClock(Callback):
    """Seconds spent in epochs so far (resumable); put it last in the callback list.

    ``elapsed``: wall time; ``cpu_elapsed``: this process's CPU time (all threads), which other
    jobs on a shared machine disturb less.
    """

    def __init__(self):
        self.elapsed = 0.0
        self.cpu_elapsed = 0.0
        self._start: Optional[tuple[float, float]] = None

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        self.elapsed, self.cpu_elapsed = self.now(), self.cpu_now()
        self._start = None

    def now(self) -> float:
        return self.elapsed + (time.perf_counter() - self._start[0] if self._start else 0.0)

    def cpu_now(self) -> float:
        return self.cpu_elapsed + (time.process_time() - self._start[1] if self._start else 0.0)

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed, "cpu_elapsed": self.cpu_elapsed}

    def load_state_dict(self, state: dict) -> None:
        self.elapsed = float(state["elapsed"])
        self.cpu_elapsed = float(state.get("cpu_elapsed", 0.0))


class SearchRecorder(Callback):
    """Finds the next mask: prune ``rate`` of ``mask``'s active weights by magnitude.

    ``detector``: an ``EarlyBirdDetector`` (or None for IMP: the mask of the last epoch).
    ``min_epoch``: the early-bird stop is not taken before this many epochs (the rewind point
    must have been passed). ``stop``: raise ``StopPhase`` once found (search-only run).
    ``min_inputs``: the per-unit floor of ``magnitude_prune``. ``on_found(mask, info)``
    receives the next mask and ``{"epoch", "seconds", "early_bird", "mask_distance"}``.
    """

    def __init__(self, mask: Mask, rate: float, scope: str, on_found: Callable, clock: PhaseClock,
                 detector=None, min_epoch: int = 0, stop: bool = False, min_inputs: int = 0):
        self.mask = mask
        self.min_inputs = int(min_inputs)
        self.rate = rate
        self.scope = scope
        self.on_found = on_found
        self.clock = clock
        self.detector = detector
        self.min_epoch = int(min_epoch)
        self.stop = stop
        self.found = False

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        if self.found:
            return
        last = epoch + 1 == trainer.config.epochs
        if self.detector is None and not last:
            return
        params = dict(trainer.model.named_parameters())
        candidate = magnitude_prune({n: params[n] for n in self.mask}, self.mask, self.rate,
                                    self.scope, self.min_inputs)
        converged, distance = False, None
        if self.detector is not None:
            distance = self.detector.update(candidate)
            row["mask_distance"] = distance
            converged = self.detector.converged() and epoch + 1 >= self.min_epoch
        if converged or last:
            self.found = True
            self.on_found(candidate, {"epoch": epoch + 1, "seconds": self.clock.now(),
                                      "cpu_seconds": self.clock.cpu_now(),
                                      "early_bird": bool(converged),
                                      "mask_distance": distance,
                                      "timesteps": trainer.config.timesteps})
            if self.stop:
                raise StopPhase

    def state_dict(self) -> dict:
        return {"found": self.found,
                "detector": None if self.detector is None else self.detector.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.found = bool(state["found"])
        if self.detector is not None and state.get("detector") is not None:
            self.detector.load_state_dict(state["detector"])
