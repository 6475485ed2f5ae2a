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

A method with ``calibrates_init = True`` (``dense`` and the sparse methods: trained from their
initial weights) wakes silent layers when a fresh run starts (``on_fit_start``):
``models.calibrate.calibrate_firing`` on the first training batch, with
``config.init_firing`` as the minimum firing rate; the factors are reported in metrics.json as
``init_scales``. Methods whose weights come from elsewhere (gene encodings) leave it off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from spikesculpt.models.calibrate import calibrate_firing
from spikesculpt.train.callbacks import Callback
from spikesculpt.train.trainer import _generator, iterate_batches


class Method(Callback):
    name = "method"
    # The method's options: their dataclass (declared once, by the method's part) and the
    # TrainConfig field holding them ("sparse", "genetic"; None: no options). The run hash
    # includes that section besides the common fields (experiments.rundir.hashed_train_config).
    options_class: Optional[type] = None
    config_section: Optional[str] = None
    calibrates_init = False
    init_scales: dict = {}

    @classmethod
    def from_options(cls, options, seed: int = 0) -> "Method":
        """The method with ``options`` (an ``options_class`` instance, or None) and ``seed``."""
        return cls()

    @classmethod
    def from_config(cls, config) -> "Method":
        """The method for a run's ``TrainConfig`` (its own section and the run seed)."""
        section = getattr(config, cls.config_section) if cls.config_section else None
        return cls.from_options(section, int(config.seed))

    @classmethod
    def resolve_options(cls, options):
        """``options`` (an ``options_class`` instance) with the fields the user left unset
        (None) filled with this method's defaults, as a new object (``options`` is unchanged).
        The run's config.yaml and hash record the resolved options, so changing a default
        changes the hash instead of reusing an old run."""
        return options

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

    def on_fit_start(self, trainer) -> None:
        if self.calibrates_init and trainer.config.init_firing > 0:
            self.init_scales = calibrate_firing(trainer.model, first_batch(trainer),
                                                trainer.config.init_firing)

    def state_dict(self) -> dict:
        return {"init_scales": dict(self.init_scales)}

    def load_state_dict(self, state: dict) -> None:
        self.init_scales = dict(state.get("init_scales", {}))

    def save_artifacts(self, folder: Path) -> None:
        pass

    def on_fit_end(self, trainer, metrics: dict) -> None:
        metrics["method"] = self.name
        metrics["method_params"] = self.params()
        if self.calibrates_init:
            metrics["init_scales"] = dict(self.init_scales)


CALIBRATION_SAMPLES = 256


def first_batch(trainer) -> torch.Tensor:
    """The first ``CALIBRATION_SAMPLES`` training samples (in stored order), encoded as the
    trainer encodes them (Poisson spikes from a fixed seed): ``[T, B, ...]`` on its device."""

    x, _ = next(iter(iterate_batches(trainer.splits.train, CALIBRATION_SAMPLES, False)))
    gen = _generator(trainer.config.seed, 0, 3) if trainer.device.type == "cpu" else None
    return trainer.to_time_major(x, gen)
