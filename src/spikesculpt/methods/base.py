"""``Method``: what a training method adds to the shared loop.

A method is a ``Callback`` with three extra entry points, so it works both inside
``spikesculpt train`` and in a user's own PyTorch loop:

- ``prepare_model(model) -> model``: before the optimizer exists (draw masks, zero the pruned
  weights; a method may also return a converted model, e.g. gene-encoded layers);
- ``attach(model, optimizer, total_steps, steps_per_epoch=None)``: hook into the optimizer
  (``register_step_pre_hook`` / ``register_step_post_hook``): after this, a plain
  ``loss.backward(); optimizer.step()`` loop runs the method;
- ``params() -> dict``: the resolved options, recorded in metrics.json as ``method_params``.

The trainer calls ``setup(trainer)`` (= ``attach`` with the trainer's model, optimizer and step
counts) once it has built its optimizer, and the usual callback events after that.
``save_artifacts(folder)`` writes the method's own files into a finished run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from spikesculpt.train.callbacks import Callback


class Method(Callback):
    name = "method"
    # The TrainConfig section holding this method's options ("sparse", "genetic"; None: none).
    # It is what the run hash includes besides the common fields (runs.hashed_train_config).
    config_section: Optional[str] = None

    @classmethod
    def resolve_config(cls, config) -> None:
        """Fill the options the user left unset (None) in ``config`` with this method's
        defaults, in place, so that config.yaml and the run's hash record what really ran
        (changing a default then changes the hash instead of reusing an old run)."""

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, total_steps: int,
               steps_per_epoch: Optional[int] = None) -> "Method":
        return self

    def setup(self, trainer) -> None:
        self.attach(trainer.model, trainer.optimizer, trainer.total_steps,
                    trainer.steps_per_epoch)

    def params(self) -> dict:
        return {}

    def save_artifacts(self, folder: Path) -> None:
        pass

    def on_fit_end(self, trainer, metrics: dict) -> None:
        metrics["method"] = self.name
        metrics["method_params"] = self.params()
