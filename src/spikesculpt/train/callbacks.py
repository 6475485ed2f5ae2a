"""Callbacks: how methods (mask updates, rewinding, evaluation hooks) plug into the loop.

The loop calls, in order::

    setup(trainer)                              # once, when the Trainer is built (optimizer exists)
    on_fit_start(trainer)                       # fresh runs only (not when resuming)
    per epoch:  on_epoch_start(trainer, epoch)
        per batch: on_after_backward(trainer)   # gradients exist, optimizer has not stepped
                   on_step_end(trainer)         # after optimizer.step(); trainer.step counts
                                                # iterations, AMP-skipped ones included
                                                # (trainer.last_step_skipped)
        on_epoch_end(trainer, epoch, row)       # row: this epoch's history dict; add columns to it
    on_fit_end(trainer, metrics)                # metrics: the final metrics dict; add keys to it

A callback that keeps state across epochs implements ``state_dict``/``load_state_dict`` so that
``--resume`` restores it.
"""

from __future__ import annotations


class Callback:
    def setup(self, trainer) -> None: ...

    def on_fit_start(self, trainer) -> None: ...

    def on_epoch_start(self, trainer, epoch: int) -> None: ...

    def on_after_backward(self, trainer) -> None: ...

    def on_step_end(self, trainer) -> None: ...

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None: ...

    def on_fit_end(self, trainer, metrics: dict) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...
