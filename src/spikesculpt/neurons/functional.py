"""Pure neuron functions: single steps with explicit state, and fused multi-step versions.

Shapes and units
----------------
``x_t`` and ``v`` are ``[B, ...]`` (one time step); ``x`` is time-major ``[T, B, ...]``. ``x`` is
the input current per time step, in units of the membrane potential (with ``decay_input=True``
the LIF neuron sees ``x / tau``); ``v`` is the membrane potential after the reset of the previous
step; time is counted in steps, so ``tau`` is in time steps. Spikes are 0/1 in the dtype of ``x``.

Dynamics (SpikingJelly's convention, ``decay_input=True``; Fang et al. 2023, Science Advances,
"SpikingJelly: An open-source machine learning infrastructure platform for spike-based
intelligence")::

    LIF charge   H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
    IF  charge   H[t] = V[t-1] + X[t]
    fire         S[t] = Θ(H[t] - V_th)                       (1 where H[t] >= V_th)
    hard reset   V[t] = H[t] · (1 - S[t]) + V_reset · S[t]   (v_reset a float)
    soft reset   V[t] = H[t] - V_th · S[t]                   (v_reset=None; V_reset := 0 above)
    rest         V[-1] = V_reset (0 for soft reset)

In the backward pass Θ'(x) is replaced by a surrogate g'(x) (``surrogate.py``). With
``detach_reset=True`` the S[t] inside the reset is treated as a constant (no gradient through the
reset, SpikingJelly's ``detach_reset``).

Floating-point form. With r = 1/tau the charge is evaluated as ``H = (r·X + r·V_reset) + (1-r)·V``
(the same number up to rounding); the fused kernels use exactly the same elementary operations in
the same order as the step functions, so ``lif_multistep`` gives bit-identical spikes to iterating
``lif_step`` (tested).

Fused multi-step kernels
------------------------
``lif_multistep`` / ``if_multistep`` run the whole time loop inside one
``torch.autograd.Function`` with a hand-written backward. The chain rule, with
G[t] = dL/dX[t] = r·dL/dH[t] (r = 1/tau; r = 1 for IF), gives the linear recurrence::

    G[t] = r·g'(H[t] - V_th)·dL/dS[t] + (1-r)·D[t]·G[t+1],   D[t] = dV[t]/dH[t] =
           (1 - S[t]) + (V_reset - H[t])·g'   hard reset
           (1 - S[t])                         hard reset, detach_reset
           1 - V_th·g'                        soft reset
           1                                  soft reset, detach_reset

and for PLIF (a learnable r) dL/dr = Σ_t dL/dH[t]·(X[t] + V_reset - V[t-1]). One ``[T, ...]``
tensor is saved for the backward (the PyTorch path also keeps the spikes, which the next layer
keeps alive anyway; PLIF there also keeps X).
Three interchangeable kernels compute exactly the same forward:

- ``impl="native"``: a C kernel compiled on first use (``cpu_kernel.py``; CPU, float32/float64,
  built-in surrogates) that runs the time loop per neuron in registers: forward one read of X
  and one write of S; it saves X and the backward recomputes H block by block in cache, reads
  dL/dS once and writes dL/dX once.
- ``impl="torch"``: PyTorch ops (``torch_kernel.py``), any device and dtype; saves -H. Forward:
  the scaled input ``-(r·X + r·V_reset)`` for all t in one op, written into the buffer that
  becomes ``-H``; then per step two in-place ops for a hard reset (``-H[t] += (1-r)·(-V)`` and
  ``-V = threshold(-H[t], -V_th, -V_reset)``: working on -H lets one ``torch.threshold`` fire and
  reset; negation is exact) or three for a soft reset; spikes for all t in one comparison.
  Backward: g', D and r·g'·dL/dS for all t in a few vectorised in-place ops, then one
  ``addcmul_`` per step for the recurrence.
- ``impl="triton"``: Triton kernels (``gpu_kernel.py``; CUDA, float32/float16/bfloat16,
  built-in surrogates): the native kernel's scheme on a GPU, one launch forward and one
  backward; saves X (in its own dtype) and recomputes H in the backward.
- ``impl="auto"`` (default): triton for CUDA tensors and native for CPU tensors where they apply
  and are available, else torch.
- ``impl="autograd"``: iterate the step function under autograd (the reference the fused
  backward is tested against; also used automatically under ``torch.func`` transforms such as
  ``vmap``, which the in-place kernels do not support).

Under ``torch.compile`` (``--compile``) the ``auto``/``native``/``triton`` neuron is traced as the
custom op of ``ops.py``, which runs the same kernels; ``impl="torch"`` is traced as PyTorch ops.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch

from spikesculpt.core.errors import UserError
from spikesculpt.neurons import cpu_kernel, gpu_kernel, torch_kernel
from spikesculpt.neurons.surrogate import Surrogate, create_surrogate, spike
from spikesculpt.neurons.torch_kernel import Decay, rest_potential

try:  # the kernels as custom ops for torch.compile; torch.library.custom_op needs torch >= 2.4
    from spikesculpt.neurons import ops
except (ImportError, AttributeError):  # pragma: no cover - older torch: compile traces the ops
    ops = None

__all__ = ["lif_step", "if_step", "lif_multistep", "if_multistep", "IMPLS"]

# --------------------------------------------------------------------------------------------
# parameters


def _decay(tau: Optional[Union[float, torch.Tensor]], decay: Optional[Decay]) -> Decay:
    """r = 1/tau, as a Python float or (PLIF) a 0-dim tensor."""
    if decay is not None:
        if tau is not None:
            raise UserError("give either tau or decay (= 1/tau), not both")
        if not isinstance(decay, torch.Tensor):
            decay = float(decay)
            if not 0.0 < decay <= 1.0:
                raise UserError(f"decay = 1/tau must be in (0, 1], got {decay}")
        return decay
    if tau is None:
        raise UserError("lif needs tau (membrane time constant, in time steps)")
    if isinstance(tau, torch.Tensor):
        return 1.0 / tau
    tau = float(tau)
    if not (tau >= 1.0 and math.isfinite(tau)):
        raise UserError(f"tau must be a number of time steps >= 1, got {tau}")
    return 1.0 / tau


def _check_threshold(v_threshold: float, v_reset: Optional[float]) -> tuple[float, Optional[float]]:
    v_threshold = float(v_threshold)
    if not math.isfinite(v_threshold):
        raise UserError(f"v_threshold must be a finite number, got {v_threshold}")
    if v_reset is not None:
        v_reset = float(v_reset)
        if not v_reset < v_threshold:
            raise UserError(f"v_reset ({v_reset}) must be below v_threshold ({v_threshold}); "
                            "use v_reset=None for a soft reset")
    return v_threshold, v_reset


# --------------------------------------------------------------------------------------------
# single steps (autograd-friendly, the reference semantics)


def _charge_lif(x: torch.Tensor, v: torch.Tensor, r: Decay,
                v_reset: Optional[float]) -> torch.Tensor:
    # H = (r·x + r·V_reset) + (1 - r)·V, in the exact op order of the fused kernel.
    xs = x * r
    if v_reset is not None and v_reset != 0.0:
        xs = xs + r * v_reset
    if isinstance(r, torch.Tensor):
        return torch.addcmul(xs, v, 1.0 - r)
    return torch.add(xs, v, alpha=1.0 - r)


def _fire_reset(h: torch.Tensor, v_threshold: float, v_reset: Optional[float],
                detach_reset: bool, surrogate: Surrogate) -> tuple[torch.Tensor, torch.Tensor]:
    s = spike(h - v_threshold, surrogate)
    sr = s.detach() if detach_reset else s
    if v_reset is None:
        v = h - sr * v_threshold
    else:
        v = h * (1.0 - sr) + v_reset * sr
    return s, v


def lif_step(x_t: torch.Tensor, v: Optional[torch.Tensor] = None, *,
             tau: Optional[Union[float, torch.Tensor]] = 2.0, decay: Optional[Decay] = None,
             v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
             detach_reset: bool = False, surrogate: "str | Surrogate" = "atan",
             alpha: Optional[float] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF step: ``(x_t[B, ...], v[B, ...]) -> (spike_t[B, ...], v_next[B, ...])``.

    ``H = V + (X - (V - V_reset))/tau``, ``S = Θ(H - V_th)``, then hard reset to ``v_reset`` or
    (``v_reset=None``) soft reset ``V = H - V_th·S``. ``v=None`` starts from rest (``v_reset``, or
    0 for a soft reset). Give ``decay`` (= 1/tau, a float or a 0-dim tensor, as PLIF does) instead
    of ``tau`` to set the leak directly; set ``tau=None`` then. Differentiable in ``x_t``, ``v`` and
    a tensor ``tau``/``decay``, with the surrogate gradient through Θ.
    """
    r = _decay(None if decay is not None else tau, decay)
    v_threshold, v_reset = _check_threshold(v_threshold, v_reset)
    sur = create_surrogate(surrogate, alpha)
    if v is None:
        v = torch.full_like(x_t, rest_potential(v_reset))
    h = _charge_lif(x_t, v, r, v_reset)
    return _fire_reset(h, v_threshold, v_reset, detach_reset, sur)


def if_step(x_t: torch.Tensor, v: Optional[torch.Tensor] = None, *, v_threshold: float = 1.0,
            v_reset: Optional[float] = 0.0, detach_reset: bool = False,
            surrogate: "str | Surrogate" = "atan",
            alpha: Optional[float] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One integrate-and-fire step (no leak): ``H = V + X``, then fire and reset as ``lif_step``."""
    v_threshold, v_reset = _check_threshold(v_threshold, v_reset)
    sur = create_surrogate(surrogate, alpha)
    if v is None:
        v = torch.full_like(x_t, rest_potential(v_reset))
    return _fire_reset(torch.add(x_t, v), v_threshold, v_reset, detach_reset, sur)


# --------------------------------------------------------------------------------------------
# fused multi-step: one autograd Function over two kernels (torch_kernel.py, cpu_kernel.py)


def _resolve_is_compiling():
    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if fn is None:  # pragma: no cover - torch < 2.3
        fn = getattr(getattr(torch, "_dynamo", None), "is_compiling", None)
    return fn or (lambda: False)


def _resolve_dispatch_mode():
    try:
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        return _get_current_dispatch_mode
    except ImportError:  # pragma: no cover - very old torch
        return lambda: None


_is_compiling = _resolve_is_compiling()
_dispatch_mode = _resolve_dispatch_mode()


def _use_native(x: torch.Tensor, surrogate: Surrogate, impl: str) -> bool:
    """Whether this call runs the native kernel: ``impl`` allows it, x is a plain CPU
    float32/float64 tensor, the surrogate is built in, and we are in plain eager mode (not
    tracing for torch.compile, no Python dispatch mode such as fake tensors or FLOP counters:
    the native kernel would be invisible to them or cannot run on them)."""
    if impl in ("torch", "triton"):
        return False
    ok = type(x) is torch.Tensor and cpu_kernel.handles(x, surrogate)
    if impl == "native" and not ok:
        raise UserError("impl='native' needs a plain CPU float32/float64 tensor and a built-in "
                        "surrogate; use impl='auto'")
    if not ok or _is_compiling() or _dispatch_mode() is not None:
        return False
    if cpu_kernel.KERNEL.lib is not None:
        return True
    if impl == "native" and not cpu_kernel.available():
        raise UserError(f"native neuron kernel {cpu_kernel.status()}")
    return cpu_kernel.available()


def _use_triton(x: torch.Tensor, surrogate: Surrogate, impl: str) -> bool:
    """Whether this call runs the Triton kernel (``gpu_kernel.py``): ``impl`` is auto or triton,
    x is a CUDA float32/float16/bfloat16 tensor, the surrogate is built in, eager mode."""
    if impl not in ("auto", "triton") or (impl == "auto" and not x.is_cuda):
        return False
    ok = gpu_kernel.applies(x, surrogate)
    if impl == "triton" and not ok:
        raise UserError(f"impl='triton' needs a CUDA float32/float16/bfloat16 tensor and a "
                        f"built-in surrogate ({gpu_kernel.status()}); use impl='auto'")
    return ok and not _is_compiling() and _dispatch_mode() is None


def _as_custom_op(impl: str, surrogate: Surrogate) -> bool:
    """Under torch.compile: whether the neuron is traced as the custom op of ``ops.py`` (the C
    or Triton kernel, chosen when it runs) rather than as PyTorch ops: ``impl`` auto, native or
    triton, a built-in surrogate, and a PyTorch with ``torch.library.custom_op`` (2.4+)."""
    return (ops is not None and impl in ("auto", "native", "triton")
            and cpu_kernel.surrogate_id(surrogate) is not None)


def _backend(x: torch.Tensor, surrogate: Surrogate, impl: str) -> str:
    """The kernel this call runs: ``native`` (C, CPU), ``triton`` (GPU) or ``torch``."""
    if _use_triton(x, surrogate, impl):
        return "triton"
    if _use_native(x, surrogate, impl):
        return "native"
    return "torch"


class _FusedNeuron(torch.autograd.Function):
    """Whole-sequence LIF / IF / PLIF with a hand-written backward (see the module docstring).

    Three interchangeable kernels with identical forward results: PyTorch ops (any device/dtype;
    saves -H), the native C kernel (CPU float32/float64, ``cpu_kernel.py``) and the Triton
    kernel (CUDA, ``gpu_kernel.py``); the last two save the input X and recompute H inside the
    backward kernel, which is cheaper than writing H out.
    """

    @staticmethod
    def forward(ctx, x, r_t, r, v_threshold, v_reset, detach_reset, surrogate, backend):
        # r_t: 0-dim tensor decay (PLIF) or None; r: float decay (LIF) or None (IF / PLIF)
        decay = r_t if r_t is not None else r
        ctx.r = r
        ctx.cfg = (v_threshold, v_reset, detach_reset, surrogate, backend)
        ctx.has_rt = r_t is not None
        if backend == "native":
            s, _ = cpu_kernel.forward(x, decay, v_threshold, v_reset)
            ctx.save_for_backward(x, r_t)
        elif backend == "triton":
            s = gpu_kernel.forward(x, decay, v_threshold, v_reset)
            ctx.save_for_backward(x, r_t)
        else:
            s, nh = torch_kernel.fused_forward(x, decay, v_threshold, v_reset)
            # S is the output, kept alive by the next layer anyway
            ctx.save_for_backward(nh, s, x if r_t is not None else None, r_t)
        return s

    @staticmethod
    def backward(ctx, gs):
        thr, v_reset, detach, surrogate, backend = ctx.cfg
        want_gr = ctx.has_rt and ctx.needs_input_grad[1]
        gr = None
        if backend == "native":
            x, r_t = ctx.saved_tensors
            decay = r_t if ctx.has_rt else ctx.r
            g, acc = cpu_kernel.backward(gs, x, decay, thr, v_reset, detach,
                                         cpu_kernel.surrogate_id(surrogate), surrogate.alpha,
                                         want_gr)
            if want_gr:
                gr = torch.tensor(acc, dtype=r_t.dtype, device=r_t.device)
        elif backend == "triton":
            x, r_t = ctx.saved_tensors
            decay = r_t if ctx.has_rt else ctx.r
            g, acc = gpu_kernel.backward(gs, x, decay, thr, v_reset, detach, surrogate, want_gr)
            if want_gr:
                gr = acc.to(r_t.dtype)
        else:
            nh, s, x, r_t = ctx.saved_tensors
            g, gr = torch_kernel.backward(gs, nh, s, x, r_t if ctx.has_rt else ctx.r, thr,
                                          v_reset, detach, surrogate, want_gr)
            if want_gr:
                gr = gr.to(r_t.dtype)
        gx = g if ctx.needs_input_grad[0] else None
        return gx, gr, None, None, None, None, None, None


def _functorch_active() -> bool:
    try:
        return bool(torch._C._are_functorch_transforms_active())
    except AttributeError:  # pragma: no cover - older torch
        return False


def _check_seq(x: torch.Tensor) -> None:
    if x.dim() < 2:
        raise UserError(f"spiking neurons take time-major input [T, B, ...]; got shape "
                        f"{tuple(x.shape)} (add the time and batch dimensions)")
    if not x.is_floating_point():
        raise UserError(f"neuron input must be a floating-point tensor, got {x.dtype}")


IMPLS = ("auto", "native", "triton", "torch", "autograd")


def _autograd_path(impl: str) -> bool:
    if impl not in IMPLS:
        raise UserError(f"unknown impl {impl!r}; choose one of: {', '.join(IMPLS)}")
    return impl == "autograd" or _functorch_active()


def _unrolled(step, x: torch.Tensor, **kw) -> torch.Tensor:
    v = None
    out = []
    for t in range(x.shape[0]):
        s, v = step(x[t], v, **kw)
        out.append(s)
    return torch.stack(out)


def _multistep(x: torch.Tensor, r: Optional[Decay], v_threshold: float,
               v_reset: Optional[float], detach_reset: bool, surrogate: Surrogate,
               impl: str = "auto") -> torch.Tensor:
    """Core of ``lif_multistep`` (r = decay) and ``if_multistep`` (r = None); parameters are
    already validated (the modules call this directly)."""
    _check_seq(x)
    if _autograd_path(impl):
        if r is None:
            return _unrolled(if_step, x, v_threshold=v_threshold, v_reset=v_reset,
                             detach_reset=detach_reset, surrogate=surrogate)
        return _unrolled(lif_step, x, tau=None, decay=r, v_threshold=v_threshold,
                         v_reset=v_reset, detach_reset=detach_reset, surrogate=surrogate)
    if x.shape[0] == 0:
        return torch.empty_like(x)
    if _is_compiling() and _as_custom_op(impl, surrogate):
        # traced by torch.compile: the fused kernels as one opaque custom op (ops.py)
        r_t = r if isinstance(r, torch.Tensor) else None
        return ops.neuron_forward(x, r_t, None if r_t is not None else r, v_threshold, v_reset,
                                  detach_reset, surrogate.name, surrogate.alpha)
    backend = _backend(x, surrogate, impl)
    r_t = r if isinstance(r, torch.Tensor) else None
    needs_graph = x.requires_grad or (r_t is not None and r_t.requires_grad)
    if not (needs_graph and torch.is_grad_enabled()):
        # inference: no graph, no saved state
        if backend == "native":
            return cpu_kernel.forward(x, r, v_threshold, v_reset)[0]
        if backend == "triton":
            return gpu_kernel.forward(x, r, v_threshold, v_reset)
        return torch_kernel.fused_forward(x, r, v_threshold, v_reset)[0]
    if r_t is not None:
        return _FusedNeuron.apply(x, r_t, None, v_threshold, v_reset, detach_reset, surrogate,
                                  backend)
    return _FusedNeuron.apply(x, None, r, v_threshold, v_reset, detach_reset, surrogate,
                              backend)


def lif_multistep(x: torch.Tensor, *, tau: Optional[Union[float, torch.Tensor]] = 2.0,
                  decay: Optional[Decay] = None, v_threshold: float = 1.0,
                  v_reset: Optional[float] = 0.0, detach_reset: bool = False,
                  surrogate: "str | Surrogate" = "atan", alpha: Optional[float] = None,
                  impl: str = "auto") -> torch.Tensor:
    """LIF over a whole sequence from rest: ``x[T, B, ...] -> spikes[T, B, ...]``.

    Same arguments as ``lif_step``. ``impl``: ``"auto"`` (default; the native C kernel on CPU
    and the Triton kernel on CUDA where they apply, else PyTorch ops), ``"native"``,
    ``"triton"``, ``"torch"`` or ``"autograd"`` (iterate ``lif_step`` under autograd; the
    reference). All give bit-identical spikes; gradients agree to rounding.
    """
    r = _decay(None if decay is not None else tau, decay)
    v_threshold, v_reset = _check_threshold(v_threshold, v_reset)
    return _multistep(x, r, v_threshold, v_reset, detach_reset,
                      create_surrogate(surrogate, alpha), impl)


def if_multistep(x: torch.Tensor, *, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 detach_reset: bool = False, surrogate: "str | Surrogate" = "atan",
                 alpha: Optional[float] = None, impl: str = "auto") -> torch.Tensor:
    """IF over a whole sequence from rest: ``x[T, B, ...] -> spikes[T, B, ...]``.

    Same arguments and ``impl`` choices as ``lif_multistep`` (no tau: IF does not leak).
    """
    v_threshold, v_reset = _check_threshold(v_threshold, v_reset)
    return _multistep(x, None, v_threshold, v_reset, detach_reset,
                      create_surrogate(surrogate, alpha), impl)
