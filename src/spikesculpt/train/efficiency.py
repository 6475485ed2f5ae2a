"""Efficiency metrics of a trained model on a data split, encoded exactly as evaluation encodes it.

``efficiency_metrics(trainer, dataset)`` feeds the split through ``metrics.measure_efficiency``
with the trainer's encoding and the same seeded generator as ``Trainer.evaluate`` for that split
(so Poisson spikes are the ones the test accuracy was measured on). ``run_training`` stores the
result in ``metrics.json``; ``spikesculpt evaluate`` recomputes it.
"""

from __future__ import annotations

from spikesculpt.metrics.efficiency import measure_efficiency
from spikesculpt.train.trainer import _generator, iterate_batches


def encoded_batches(trainer, dataset, seed_stream: int = 8):
    """Time-major input batches ``[T, B, ...]`` of ``dataset``, as ``Trainer.evaluate`` makes them."""
    gen = _generator(trainer.config.seed, 0, seed_stream) if trainer.device.type == "cpu" else None
    for x, _ in iterate_batches(dataset, max(trainer.config.batch_size, 256), False):
        yield trainer.to_time_major(x, gen)


def efficiency_metrics(trainer, dataset, seed_stream: int = 8, energy_preset: str = "fp32") -> dict:
    """``measure_efficiency`` of ``trainer.model`` on ``dataset`` (default: the test stream)."""
    return measure_efficiency(trainer.model, encoded_batches(trainer, dataset, seed_stream),
                              energy_preset=energy_preset)
