"""``--compile MODE``: the training forward and backward through ``torch.compile`` (issue 16).

Eager PyTorch runs a model one operation at a time: every op is a kernel launch (GPU) or a pass
over memory (CPU) with Python in between. For a small SNN the step is then bound by launches,
not arithmetic (an MLP 784-512-512-10 at T = 8: ReLU's whole step is 1.2–1.6 ms of launches
on an H200, README "Benchmarks"). ``torch.compile`` captures the step instead:

- Dynamo traces the model's forward into one graph. Each fused neuron enters it as one custom
  op (``neurons/ops.py``) that runs our kernels — the C kernel on CPUs, Triton on GPUs — with
  their memory (only the input is saved for the backward) and their bit-identical spikes; a
  neuron asked for ``impl="torch"`` is traced as PyTorch ops instead, which Inductor fuses.
- AOTAutograd derives the backward graph (the op's own backward, surrogate gradients included).
- Inductor fuses the elementwise work around them into generated kernels (Triton on GPUs,
  C++/OpenMP on CPUs).

Modes (``torch.compile``'s own; ``compile_model``):

==================  ==========================================================================
``none``            eager (the default)
``default``         Inductor
``reduce-overhead`` Inductor, then every captured forward and backward replayed as a CUDA graph
                    (one launch per graph; GPUs only, CPU tensors run as ``default``)
``max-autotune``    Inductor, also timing matmul/convolution variants (slow to compile)
==================  ==========================================================================

Costs: the first steps compile (seconds on a GPU, tens of seconds on a CPU), and once more for
the first batch of another size (the epoch's last, partial batch: the batch dimension then
becomes dynamic). Results equal eager's up to floating-point rounding around the neurons
(Inductor may fuse or reorder the other ops; with ``aot_eager`` they are equal bit for bit,
``tests/test_compile.py``), so ``--compile`` is bookkeeping, like ``--amp``: not part of the
run's hash. Whether it pays is measured, not assumed: ``benchmarks/bench_lif_mlp.py --compile``.

Hooks: a compiled graph does not run forward hooks registered after it was traced, and a traced
hook with Python side effects recompiles it every step. So a training forward while any module
has forward hooks runs the eager model (``Trainer.forward_for_step``): Hebbian growth's
recording step, and BatchNorm's first ``1/momentum`` batches (``norm_stats.py``, whose hooks
leave once warm). Evaluation always runs the eager model.
"""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from spikesculpt.core.errors import UserError

COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def cpu_compiler() -> str | None:
    """The C++ compiler Inductor would use on the CPU ($CXX, else g++, clang++, c++), or None."""
    for name in (os.environ.get("CXX"), "g++", "clang++", "c++"):
        if name and shutil.which(name):
            return name
    return None


def compile_model(model: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """``model`` itself for mode ``none``, else ``torch.compile(model, mode=...)`` (module
    docstring). ``UserError`` for an unknown mode, or a CPU device without a C++ compiler
    (Inductor generates C++ there)."""
    if mode not in COMPILE_MODES:
        raise UserError(f"unknown compile mode {mode!r}; choose from {', '.join(COMPILE_MODES)}")
    if mode == "none":
        return model
    if device.type == "cpu" and cpu_compiler() is None:
        raise UserError("--compile on a CPU needs a C++ compiler (g++ or clang++, or $CXX) for "
                        "the kernels Inductor generates; install one or drop --compile")
    return torch.compile(model, mode=None if mode == "default" else mode)
