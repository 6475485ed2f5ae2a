"""BatchNorm running statistics that are right from the first epoch (a bias-corrected average).

PyTorch's BatchNorm starts its running statistics at mean 0, variance 1 and moves them by
``momentum`` (0.1) per training batch: after n batches the initial guess still weighs 0.9ⁿ.
Evaluation uses those running statistics, so when the true variance of a layer's input is far
from 1 the evaluated network is not the trained one. In a spiking network it often is: a conv
fed by spikes at a few percent has an input variance of 10⁻²–10⁻⁴ (less, the sparser the
layer). Measured on digits (``conv`` 16-32, 26 batches per epoch): after the first epoch the
second layer's true variance was ~0.001 against a running estimate of 0.12, so every neuron was
silent in evaluation (firing 0.000, validation accuracy 10.5%) while it fired at 5% in training;
at density 0.05 (true variance ~4·10⁻⁵) evaluation stayed silent for 3 epochs.

``warm_running_stats(model)`` (a context manager, used around every training epoch) makes each
BatchNorm with a ``momentum`` use ``max(momentum, 1/n)`` at its n-th training batch (n counted
from ``num_batches_tracked``): the plain average of the batches seen while ``n < 1/momentum``,
then the usual exponential average. The initial 0/1 guess is replaced by the first batch, as
Adam's bias correction does for its moments. After ``1/momentum`` batches (10) nothing changes,
and the hook that did it is gone.
``momentum=None`` (PyTorch's cumulative average) is left alone. Our choice. Besides PyTorch's
BatchNorm layers, any module that says ``running_stats_like_batch_norm = True`` and has their
``momentum``, ``track_running_stats`` and ``num_batches_tracked`` (possibly one count per
candidate of a stacked population, all equal) is warmed alike.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def warm_running_stats(model: nn.Module) -> Iterator[None]:
    """While active: BatchNorm layers average their first ``1/momentum`` training batches."""
    norms = [m for m in model.modules()
             if (isinstance(m, nn.modules.batchnorm._BatchNorm)
                 or getattr(m, "running_stats_like_batch_norm", False))
             and m.momentum is not None and m.track_running_stats
             and m.num_batches_tracked is not None]
    base = {id(m): m.momentum for m in norms}
    # counted here from then on: no device sync per batch
    seen = {id(m): int(m.num_batches_tracked.max()) for m in norms}

    def before_forward(module, inputs):
        if module.training:
            key = id(module)
            seen[key] += 1
            module.momentum = max(base[key], 1.0 / seen[key])
            if seen[key] >= 1.0 / base[key]:  # warm: from now on the momentum is the base one
                handles.pop(key).remove()

    # only the layers still warming get a hook; it removes itself when they are warm, so a
    # model's later forwards run hook-free (what a --compile'd graph needs: train/compiled.py)
    handles = {id(m): m.register_forward_pre_hook(before_forward) for m in norms
               if seen[id(m)] < 1.0 / base[id(m)]}
    try:
        yield
    finally:
        for h in handles.values():
            h.remove()
        for m in norms:
            m.momentum = base[id(m)]
