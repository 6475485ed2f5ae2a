"""Efficiency of a trained model on a data split, encoded exactly as evaluation encodes it.

``efficiency_metrics(trainer, dataset)`` feeds the split through ``metrics.measure_efficiency``
with the trainer's encoding and the same seeded generator as ``Trainer.evaluate`` for that split
(so Poisson spikes are the ones the test accuracy was measured on). ``run_training`` stores the
result in ``metrics.json``; ``spikesculpt evaluate`` recomputes it. ``compare_on_split`` is
``evaluate --sparse``: the model against its sparse-inference conversion on the same batches.
"""

from __future__ import annotations

import torch

from spikesculpt.inference import cpu_kernel
from spikesculpt.inference.sparse_inference import compare_models, to_sparse_inference
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


def compare_on_split(trainer, dataset, max_density: float = 0.5, rounds: int = 5) -> dict:
    """``spikesculpt evaluate --sparse``: convert ``trainer.model``, run both on ``dataset``
    encoded as for the test accuracy, and report accuracy, agreement and time per batch."""
    model = trainer.model
    sparse, report = to_sparse_inference(model.cpu() if trainer.device.type != "cpu" else model,
                                         max_density=max_density)
    batches = [x.cpu() for x in encoded_batches(trainer, dataset)]
    labels = torch.cat([y for _, y in _labels(dataset, trainer)])
    result = compare_models(model, sparse, batches, rounds=rounds)
    acc_dense = float((result.pop("predictions_dense") == labels).float().mean())
    acc_sparse = float((result.pop("predictions_sparse") == labels).float().mean())
    return {"test_accuracy_dense": acc_dense, "test_accuracy_sparse": acc_sparse, **result,
            "batch_size": batches[0].shape[1] if batches else 0,
            "threads": torch.get_num_threads(), "kernel": cpu_kernel.status(),
            "layers": report}


def _labels(dataset, trainer):
    return iterate_batches(dataset, max(trainer.config.batch_size, 256), False)
