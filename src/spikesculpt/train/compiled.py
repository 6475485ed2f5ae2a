"""``--compile MODE``: the training forward and backward through ``torch.compile`` (issue 16).

Eager PyTorch runs a model one operation at a time: every op is a kernel launch (GPU) or a pass
over memory (CPU) with Python in between. For a small SNN the step is then bound by launches,
not arithmetic (an MLP 784-512-512-10 at T = 8: ReLU's whole step is 1.2–1.6 ms of launches
on an H200, README "Benchmarks"). ``torch.compile`` captures the step instead:

- Dynamo traces the model's forward into one graph. The neurons' fused functions run their
  PyTorch-ops path while traced (``neurons/functional.py``: the C and Triton kernels are opaque
  to the tracer), so nothing breaks the graph.
- AOTAutograd derives the backward graph, surrogate gradients included.
- Inductor fuses the elementwise work into generated kernels (Triton on GPUs, C++/OpenMP on
  CPUs). A LIF/IF/PLIF neuron's whole T-step recurrence is elementwise per neuron, so it can
  fuse into one kernel forward and one backward, as our hand-written kernels do.

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
becomes dynamic). Results equal eager's up to floating-point rounding (Inductor may reorder
sums), so a spike can flip where a membrane sits within rounding of the threshold; ``--compile``
is therefore bookkeeping, like ``--amp``: not part of the run's hash. Whether it pays is
measured, not assumed: ``benchmarks/bench_lif_mlp.py --compile MODE``.

Only the training forward/backward is compiled (``Trainer.forward_model``); evaluation runs the
eager model, so recording hooks there (firing rates) never trigger a recompilation.
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
