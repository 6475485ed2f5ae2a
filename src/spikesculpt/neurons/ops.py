"""The fused multi-step neuron as a PyTorch custom operator, for ``torch.compile`` (issue 16).

In eager mode the fused neurons are a ``torch.autograd.Function`` around three kernels
(``functional._FusedNeuron``: the C kernel on CPUs, Triton on GPUs, PyTorch ops elsewhere).
``torch.compile`` cannot trace into the C or Triton launches, so without this module a compiled
model runs the PyTorch-ops path, which Inductor then fuses on its own. This module registers

    spikesculpt::neuron_forward(x, r_t, r, v_threshold, v_reset, detach_reset, surrogate, alpha)
        -> S
    spikesculpt::neuron_backward(gs, x, r_t, r, v_threshold, v_reset, detach_reset, surrogate,
                                 alpha, want_gr) -> (dL/dX, dL/dr)

with ``torch.library.custom_op``: opaque nodes of the captured graph, each with a fake
(shape-only) implementation for tracing and an autograd formula (the backward op), so a
compiled model keeps our kernels, their memory (only X is saved for the backward: 4 bytes per
neuron per step in float32) and their bit-identical spikes, while Inductor fuses everything
around them and ``mode="reduce-overhead"`` replays the whole step as CUDA graphs.

Arguments: ``x [T, ...]`` the input current; the decay as ``r_t`` (0-dim tensor: PLIF, gets a
gradient) or ``r`` (float: LIF), both None for IF; ``v_reset`` None for a soft reset;
``surrogate`` a built-in surrogate's registered name and ``alpha`` its width. Which kernel runs
is decided when the op runs, not when it is traced: the C kernel for CPU float32/float64 where
it loaded, Triton for CUDA float32/float16/bfloat16 where it applies, else the PyTorch-ops
kernels (the backward then recomputes -H and S from X). All give the forward of the eager path.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from spikesculpt.neurons import cpu_kernel, gpu_kernel, torch_kernel
from spikesculpt.neurons.surrogate import create_surrogate


def _decay(r_t: Optional[Tensor], r: Optional[float]):
    return r_t if r_t is not None else r


def _kernel(x: Tensor, surrogate) -> str:
    """``native``, ``triton`` or ``torch``: the kernel this call runs (module docstring)."""
    if cpu_kernel.handles(x, surrogate) and cpu_kernel.available():
        return "native"
    if x.is_cuda and gpu_kernel.applies(x, surrogate):
        return "triton"
    return "torch"


@torch.library.custom_op("spikesculpt::neuron_forward", mutates_args=())
def neuron_forward(x: Tensor, r_t: Optional[Tensor], r: Optional[float], v_threshold: float,
                   v_reset: Optional[float], detach_reset: bool, surrogate: str,
                   alpha: float) -> Tensor:
    """Spikes ``S[T, ...]`` (x's dtype, contiguous) of the neuron from rest."""
    sur = create_surrogate(surrogate, alpha)
    kernel, decay = _kernel(x, sur), _decay(r_t, r)
    if kernel == "native":
        return cpu_kernel.forward(x, decay, v_threshold, v_reset)[0]
    if kernel == "triton":
        return gpu_kernel.forward(x, decay, v_threshold, v_reset)
    return torch_kernel.fused_forward(x.contiguous(), decay, v_threshold, v_reset)[0]


@neuron_forward.register_fake
def _(x, r_t, r, v_threshold, v_reset, detach_reset, surrogate, alpha):
    return x.new_empty(x.shape)


@torch.library.custom_op("spikesculpt::neuron_backward", mutates_args=())
def neuron_backward(gs: Tensor, x: Tensor, r_t: Optional[Tensor], r: Optional[float],
                    v_threshold: float, v_reset: Optional[float], detach_reset: bool,
                    surrogate: str, alpha: float, want_gr: bool) -> tuple[Tensor, Tensor]:
    """``dL/dX`` (x's dtype) and, for PLIF with ``want_gr``, ``dL/dr`` (0-dim float32; else 0)
    from ``dL/dS`` and the saved input x."""
    sur = create_surrogate(surrogate, alpha)
    kernel, decay = _kernel(x, sur), _decay(r_t, r)
    if kernel == "native":
        g, acc = cpu_kernel.backward(gs, x, decay, v_threshold, v_reset, detach_reset,
                                     cpu_kernel.surrogate_id(sur), sur.alpha, want_gr)
        return g, torch.tensor(acc if want_gr else 0.0, dtype=torch.float32)
    if kernel == "triton":
        g, gr = gpu_kernel.backward(gs, x, decay, v_threshold, v_reset, detach_reset, sur,
                                    want_gr)
        return g, gr if want_gr else torch.zeros((), dtype=torch.float32, device=x.device)
    # PyTorch-ops kernels: recompute -H and S from x (the eager path saves them instead)
    x = x.contiguous()
    s, nh = torch_kernel.fused_forward(x, decay, v_threshold, v_reset)
    g, gr = torch_kernel.backward(gs.to(x.dtype).contiguous(), nh, s, x, decay, v_threshold,
                                  v_reset, detach_reset, sur, want_gr)
    return g, (gr.float() if want_gr
               else torch.zeros((), dtype=torch.float32, device=x.device))


@neuron_backward.register_fake
def _(gs, x, r_t, r, v_threshold, v_reset, detach_reset, surrogate, alpha, want_gr):
    return x.new_empty(x.shape), x.new_empty((), dtype=torch.float32)


def _setup_context(ctx, inputs, output) -> None:
    x, r_t, r, v_threshold, v_reset, detach_reset, surrogate, alpha = inputs
    ctx.save_for_backward(x, r_t)  # X only (and PLIF's decay): H is recomputed from it
    ctx.cfg = (r, v_threshold, v_reset, detach_reset, surrogate, alpha)
    ctx.has_rt = r_t is not None


def _backward(ctx, gs):
    x, r_t = ctx.saved_tensors
    r, v_threshold, v_reset, detach_reset, surrogate, alpha = ctx.cfg
    want_gr = ctx.has_rt and ctx.needs_input_grad[1]
    g, gr = neuron_backward(gs, x, r_t, r, v_threshold, v_reset, detach_reset, surrogate,
                            alpha, want_gr)
    return (g if ctx.needs_input_grad[0] else None,
            gr.to(device=r_t.device, dtype=r_t.dtype) if want_gr else None,
            None, None, None, None, None, None)


neuron_forward.register_autograd(_backward, setup_context=_setup_context)
