"""``fit`` and ``sparsify``: the Python entry points for your own models.

    import spikesculpt
    from spikesculpt.data import load_dataset

    splits = load_dataset("digits")
    metrics = spikesculpt.fit(model, splits, method="esl", density=0.1, epochs=30)
    # a fixed mask: a lottery level's, a sparse run's, or one-shot magnitude pruning
    mask = spikesculpt.magnitude_ticket(trained_model, density=0.1)
    metrics = spikesculpt.fit(model, splits, method="ticket", mask=mask, epochs=30)

    # or keep your own loop: the method runs inside the optimizer's step hooks
    esl = spikesculpt.sparsify(model, optimizer, "esl", total_steps=1000, density=0.1)
    for x, y in loader:
        optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()

``model`` is any ``nn.Module`` mapping time-major input ``[T, B, ...]`` to logits
``[T, B, classes]`` — a registered model, a plain PyTorch one, or one built from SpikingJelly
modules in multi-step mode (their membrane state is reset before every batch).
"""

from __future__ import annotations

import copy
from typing import Optional

from torch import nn

from spikesculpt.config import TrainConfig, overlay
from spikesculpt.core.errors import UserError
from spikesculpt.methods import METHODS, build_method, create_method
from spikesculpt.metrics.model_stats import model_stats
from spikesculpt.train.trainer import Trainer


def _split_options(config: TrainConfig, options: dict) -> tuple[dict, dict]:
    top, section = {}, {}
    fields = set(config.to_dict())
    for k, v in options.items():
        (top if k in fields else section)[k] = v
    return top, section


def fit(model: nn.Module, splits, config: Optional[TrainConfig] = None,
        method: Optional[str] = None, progress: bool = True, **options) -> dict:
    """Train ``model`` on ``splits`` (``load_dataset(...)``) and return the final metrics.

    ``config`` sets the loop (epochs, lr, optimizer, timesteps, ...; default ``TrainConfig()``);
    ``method`` names the training method (default ``config.method``); ``options`` are config
    fields (``epochs=30``) or the method's options (``density=0.1``, ``grow="hebbian"``).
    The model kept is the best on validation; ``metrics["test_accuracy"]`` is measured on it.

    Returned keys (as in a run's metrics.json): ``test_accuracy``, ``val_accuracy``,
    ``best_epoch``, ``firing_rate``, ``layer_firing_rates``, ``silent_layers``, ``density``
    (nonzero / prunable weights), ``params_total``, ``params_prunable``, ``nonzero_prunable``,
    ``method``, ``method_params``, ``init_scales`` (dense / sparse methods) and the method's own
    keys (sparse: ``mask_density``, ``topology_change``, ...).

    Your model is changed in place: a sparse method zeroes the pruned weights and multiplies the
    kept ones by 1/√d where no normalisation follows (``rescale_kept_weights``); dense and sparse
    methods then scale up the Linear / Conv layers whose spiking neurons fire below
    ``init_firing`` (0.1) on the first training batch (``models.calibrate``; pass
    ``init_firing=0`` to keep your weights as they are, e.g. a trained model). A layer still
    silent after an epoch gets one warning.
    """

    config = copy.deepcopy(config) if config is not None else TrainConfig()
    if method is not None:
        config.method = method
    top, section = _split_options(config, options)
    overlay(config, top, "fit options")
    if section:  # the method's own options go into the section it reads
        name = METHODS.get(config.method).config_section
        if name is None:
            raise UserError(f"method {config.method!r} takes no options, got {sorted(section)}")
        overlay(getattr(config, name), section, f"{config.method} options")
    built = build_method(config.validate())
    model = built.prepare_model(model)
    trainer = Trainer(model, splits, config, [built], progress=progress)
    metrics = trainer.fit()
    stats = model_stats(trainer.model)
    metrics.update({k: stats[k] for k in ("density", "params_total", "params_prunable",
                                          "nonzero_prunable")})
    return metrics


def sparsify(model: nn.Module, optimizer, method: str = "esl", total_steps: int = 1,
             steps_per_epoch: Optional[int] = None, seed: int = 0, **options):
    """Make ``model`` sparse in place and run ``method`` inside ``optimizer``'s step hooks.

    Returns the attached method (``.mask``, ``.updates``, ``.topology_change()``). The optimizer
    must hold the model's parameters; ``total_steps`` sets the rewiring schedule. Without data
    here, silent layers are not woken: call ``spikesculpt.calibrate_firing(model, x)`` on one
    input batch after this if a layer may start silent (see ``fit``).
    """

    m = create_method(method, seed=seed, **options)
    m.prepare_model(model)
    return m.attach(model, optimizer, total_steps, steps_per_epoch)
