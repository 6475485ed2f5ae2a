"""Efficiency of a trained model on a data split, encoded exactly as evaluation encodes it.

``efficiency_metrics(trainer, dataset)`` feeds the split through ``metrics.measure_efficiency``
with the trainer's encoding and the same seeded generator as ``Trainer.evaluate`` for that split
(so Poisson spikes are the ones the test accuracy was measured on). ``run_training`` stores the
result in ``metrics.json``; ``spikesculpt evaluate`` recomputes it. ``compare_on_split`` is
``evaluate --sparse``: the model against its sparse-inference conversion on the same batches.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch

from spikesculpt.core import allocator
from spikesculpt.inference import conv_kernel, cpu_kernel
from spikesculpt.inference.sparse_inference import (
    compare_models,
    inference_rewrites,
    to_sparse_inference,
)
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


def compare_on_split(trainer, dataset, rounds: int = 5, calibrate: bool = True,
                     batch_size: Optional[int] = None, max_density: Optional[float] = None,
                     keep_memory: bool = True) -> dict:
    """``spikesculpt evaluate --sparse``: convert ``trainer.model``, run it and the dense model
    on ``dataset`` encoded as for the test accuracy, and report accuracy, agreement and time.

    ``calibrate``: choose each layer's kernel by timing them on the first batch (then every
    linear / convolution layer is a candidate, ``max_density`` 1.0 unless given; a layer where
    the dense kernel wins stays dense); else the activity rule and ``max_density`` 0.5.
    ``batch_size``: re-slice the encoded split into batches of this many samples (the same
    spikes). Timed, interleaved: the model as trained, the sparse model, and the dense model
    with its BatchNorms folded (``speedup_vs_folded_dense``: what sparsity alone buys, since
    the sparse model folds them too). ``keep_memory``: first make glibc keep freed memory for
    the whole process (``core.allocator.keep_freed_memory``: no page faults on fresh tensors,
    for all three models alike); ``allocator`` in the result says which malloc ran."""
    if keep_memory:
        allocator.keep_freed_memory()
    model = trainer.model.cpu() if trainer.device.type != "cpu" else trainer.model
    model.eval()
    batches = [x.cpu() for x in encoded_batches(trainer, dataset)]
    if batch_size and batches:
        batches = list(torch.cat(batches, 1).split(batch_size, 1))
    if max_density is None:
        max_density = 1.0 if calibrate else 0.5
    sparse, report = to_sparse_inference(model, max_density=max_density,
                                         calibrate_on=batches[0] if calibrate and batches
                                         else None)
    folded = copy.deepcopy(model).eval()
    inference_rewrites(folded)  # the dense model with the same non-sparse rewrites
    labels = torch.cat([y for _, y in _labels(dataset, trainer)])
    result = compare_models(model, sparse, batches, rounds=rounds, reference=folded)
    acc_dense = float((result.pop("predictions_dense") == labels).float().mean())
    acc_sparse = float((result.pop("predictions_sparse") == labels).float().mean())
    samples = max(sum(b.shape[1] for b in batches), 1)
    folded_s = result.pop("reference_seconds_per_batch")
    result["speedup_vs_folded_dense"] = result.pop("speedup_vs_reference")
    result["dense_folded_seconds_per_batch"] = folded_s
    for k in ("dense", "sparse", "dense_folded"):  # the mean batch time x batches / samples
        result[f"{k}_ms_per_sample"] = (1e3 * result[f"{k}_seconds_per_batch"] * len(batches)
                                        / samples)
    return {"test_accuracy_dense": acc_dense, "test_accuracy_sparse": acc_sparse, **result,
            "batch_size": batches[0].shape[1] if batches else 0, "calibrated": calibrate,
            "threads": torch.get_num_threads(), "allocator": allocator.state(),
            "kernel": cpu_kernel.status(),
            "conv_kernel": conv_kernel.status(), "layers": report}

def _labels(dataset, trainer):
    return iterate_batches(dataset, max(trainer.config.batch_size, 256), False)
