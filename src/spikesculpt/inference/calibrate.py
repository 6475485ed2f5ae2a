"""Per-layer kernel choice by measurement: which kernel is fastest for *this* layer, on *this*
CPU, with *this* model's activity.

The crossovers between the kernels move with the machine (a CPU with AMX or AVX-512 runs the
dense GEMM 3–4x faster than an AVX2 one while the sparse kernels barely change), with the
layer's shape and density and with its input's spike rate. A fixed rule cannot get them all
right, so ``calibrate`` measures: it runs the converted model once on a sample input with
forward pre-hooks that keep every sparse layer's input, then times each of the layer's kernels
on that input (best of ``calls``, kernels interleaved) and fixes the fastest as the layer's
``mode``. Candidates: ``SparseLinear`` — ``rows``, ``events``, ``torch`` (CSR), ``dense``;
``SparseConv2d`` / ``SparseConv1d`` — ``direct``, ``events`` (padding ≤ k-1), ``dense``. The
choice is stored in the layers' state dict (``get_extra_state``), so it is made once per model
and machine. Outputs do not change with the choice beyond float32 rounding.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from spikesculpt.inference import conv_kernel, cpu_kernel
from spikesculpt.inference.sparse_conv import SparseConv2d
from spikesculpt.inference.sparse_linear import SparseLinear


def candidates(layer: nn.Module) -> list[str]:
    """The kernels ``layer`` can run on the CPU here."""
    if isinstance(layer, SparseLinear):
        return (["rows", "events"] if cpu_kernel.available() else []) + ["torch", "dense"]
    if isinstance(layer, SparseConv2d):
        if not conv_kernel.available():
            return ["dense"]
        return ["direct"] + (["events"] if layer.kernel_weights().events_ok else []) + ["dense"]
    raise TypeError(f"not a sparse layer: {type(layer).__name__}")


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@torch.no_grad()
def calibrate(model: nn.Module, sample: torch.Tensor, calls: int = 3) -> dict[str, dict]:
    """Time every kernel of every sparse layer of ``model`` on its input for ``sample`` and set
    each layer's ``mode`` to the fastest. Returns ``{module name: {"kernel": chosen,
    "calibration_ms": {kernel: best ms}, "input_activity": fraction of nonzero inputs}}``;
    layers the sample does not reach are left as they are."""
    layers = {name: m for name, m in model.named_modules()
              if isinstance(m, (SparseLinear, SparseConv2d))}
    inputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, name=name: inputs.setdefault(name, args[0].detach().clone()))
        for name, m in layers.items()]
    try:
        model.eval()
        model(sample)
    finally:
        for h in hooks:
            h.remove()
    chosen = {}
    for name, layer in layers.items():
        if name not in inputs:
            continue
        x = layer.as_kernel_input(inputs[name]).contiguous()
        kinds = candidates(layer)
        times = {k: float("inf") for k in kinds}
        for k in kinds:  # warm-up (and the lazily built layouts)
            layer.run_kernel(k, x)
        for r in range(max(calls, 1)):
            for k in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                times[k] = min(times[k], _seconds(lambda k=k: layer.run_kernel(k, x)))
        best = min(times, key=times.get)
        layer.mode = best
        chosen[name] = {"kernel": best, "calibration_ms": {k: 1e3 * t for k, t in times.items()},
                        "input_activity": float((x != 0).float().mean())}
    return chosen
