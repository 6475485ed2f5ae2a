"""Triton kernels of the fused multi-step neurons (LIF, IF, PLIF) on CUDA tensors.

Imported only by ``gpu_kernel.py``, and only once Triton is known to import (Triton ships with
the CUDA builds of PyTorch). The dynamics, the chain rule and the roundings are those of
``functional.py`` and ``torch_kernel.py``; this file holds the same arithmetic in Triton.

Layout: ``x``, spikes ``s``, ``dL/dS`` and ``dL/dX`` are contiguous ``[T, N]`` (N = every
dimension after time, batch included), in float32, float16 or bfloat16; arithmetic is float32.
Each program owns ``BLOCK`` neurons and runs the whole time loop for them with the membrane
potential in registers. T is a compile-time constant (one compilation per sequence length; the
loops over time have known trip counts).

Charge, exactly as the PyTorch path rounds it (see ``cpu_kernel.scalars``)::

    h = fma(a, v, x·b + c)      b = r, a = 1 - r, c = r·V_reset (IF: b = a = 1, c = 0)

``x·b`` and ``r·V_reset`` use ``mul_rn`` so that the compiler cannot contract them into an FMA
(PyTorch computes them as separate ops); in Triton's interpreter (``TRITON_INTERPRET=1``, numpy,
no contraction) they are plain products (constexpr ``EXACT``). Whether PyTorch's ``add(alpha=)``
/ ``addcmul`` round ``a·v`` before the sum depends on how PyTorch was compiled: constexpr ``FMA``
selects one fused multiply-add or a rounded product and a sum, and ``gpu_kernel`` picks, at its
first use on a device, the one whose spikes equal the PyTorch path's.

Forward (``neuron_forward``): per step one read of X and one write of S (bytes per neuron per
step: 2 × the element size, a ReLU's traffic). Nothing else is stored: the backward recomputes H.

Backward (``neuron_backward``): H is recomputed from the saved X, in chunks of ``C`` steps
(a constexpr, ``C = T`` for T ≤ 16) held in registers as a tuple, then the adjoint recurrence

    gh = dL/dH[t] = g'(H - V_th)·dL/dS[t] + m[t]·a·gh[t+1],    dL/dX[t] = b·gh
    m = (1 - S) + (V_reset - H)·g'  hard reset    (1 - S with detach_reset)
        1 - V_th·g'                 soft reset    (1 with detach_reset)

runs backwards through the chunk. For T > C a first pass stores the membrane potential at each
chunk boundary (one float32 per neuron per chunk), and each chunk restarts from it. Per neuron
per step the backward reads X and dL/dS and writes dL/dX once (X twice when T > C). PLIF also
sums ``gh·(X + V_reset - V[t-1])`` per program into ``gr`` (dL/dr = that sum over programs).
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.language.extra import libdevice

# surrogate ids: cpu_kernel.SURROGATE_IDS (atan 0, sigmoid 1, triangle 2, fast_sigmoid 3)


@triton.jit
def _surrogate_grad(u, alpha, SID: tl.constexpr):
    """g'(u), u = H - V_th (float32); the formulas of ``surrogate.py``."""
    if SID == 0:  # atan: (α/2) / (1 + (π/2·α·u)²)
        k = 1.5707963267948966 * alpha * u
        g = (0.5 * alpha) / (1.0 + k * k)
    elif SID == 1:  # sigmoid: α·e/(1+e)², e = exp(-α|u|)
        e = tl.exp(-alpha * tl.abs(u))
        d = 1.0 + e
        g = alpha * e / (d * d)
    elif SID == 2:  # triangle: max(0, α - α²|u|)
        g = tl.maximum(alpha - alpha * alpha * tl.abs(u), 0.0)
    else:  # fast_sigmoid: (α/2) / (1 + α|u|)²
        d = 1.0 + alpha * tl.abs(u)
        g = (0.5 * alpha) / (d * d)
    return g


@triton.jit
def _mul(x, y, EXACT: tl.constexpr):
    """x·y rounded on its own (never contracted into a following add)."""
    if EXACT:
        p = libdevice.mul_rn(x, y)
    else:
        p = x * y
    return p


@triton.jit
def _coefficients(r_ptr, b, a, c, vr, PLIF: tl.constexpr, HAS_C: tl.constexpr,
                  EXACT: tl.constexpr):
    """(b, a, c) of the charge; PLIF reads r from memory (no host synchronisation)."""
    if PLIF:
        b = tl.load(r_ptr).to(tl.float32)
        a = 1.0 - b
        if HAS_C:
            c = _mul(b, vr, EXACT)
    return b, a, c


@triton.jit
def _charge(x, v, b, a, c, HAS_C: tl.constexpr, EXACT: tl.constexpr, FMA: tl.constexpr):
    xb = _mul(x, b, EXACT)
    if HAS_C:
        xb = xb + c
    if FMA:
        h = tl.fma(a, v, xb)
    else:
        h = _mul(a, v, EXACT) + xb
    return h


@triton.jit
def _reset(h, thr, vr, HARD: tl.constexpr):
    if HARD:
        v = tl.where(h >= thr, vr, h)
    else:
        v = tl.where(h >= thr, h - thr, h)
    return v


@triton.jit
def neuron_forward(x_ptr, s_ptr, h_ptr, r_ptr, N, b, a, c, thr, vr, v0, T: tl.constexpr,
                   PLIF: tl.constexpr, HAS_C: tl.constexpr, HARD: tl.constexpr,
                   EXACT: tl.constexpr, FMA: tl.constexpr, STORE_H: tl.constexpr,
                   BLOCK: tl.constexpr):
    """Spikes S[t] = [H[t] >= V_th] for all t; x and s are [T, N]. ``STORE_H`` also writes the
    float32 membrane H to h (the self-test and the tests compare it bit for bit)."""
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    b, a, c = _coefficients(r_ptr, b, a, c, vr, PLIF, HAS_C, EXACT)
    v = tl.zeros([BLOCK], tl.float32) + v0
    for t in range(T):
        off = t * N + n
        x = tl.load(x_ptr + off, mask=mask, other=0.0).to(tl.float32)
        h = _charge(x, v, b, a, c, HAS_C, EXACT, FMA)
        tl.store(s_ptr + off, (h >= thr).to(s_ptr.dtype.element_ty), mask=mask)
        if STORE_H:
            tl.store(h_ptr + off, h, mask=mask)
        v = _reset(h, thr, vr, HARD)


@triton.jit
def neuron_backward(gs_ptr, x_ptr, gx_ptr, r_ptr, ckpt_ptr, gr_ptr, N,
                    b, a, c, thr, vr, v0, alpha, T: tl.constexpr,
                    PLIF: tl.constexpr, HAS_C: tl.constexpr, HARD: tl.constexpr,
                    DETACH: tl.constexpr, SID: tl.constexpr, WANT_GR: tl.constexpr,
                    EXACT: tl.constexpr, FMA: tl.constexpr, C: tl.constexpr,
                    BLOCK: tl.constexpr):
    """dL/dX for all t from dL/dS and the saved X (H recomputed); see the module docstring."""
    pid = tl.program_id(0)
    n = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    b, a, c = _coefficients(r_ptr, b, a, c, vr, PLIF, HAS_C, EXACT)
    # pass 1 (T > C only): the membrane potential at the start of chunks 1 .. n_chunks-1
    v = tl.zeros([BLOCK], tl.float32) + v0
    n_chunks: tl.constexpr = (T + C - 1) // C
    for k in range(n_chunks - 1):
        for j in tl.static_range(C):
            x = tl.load(x_ptr + (k * C + j) * N + n, mask=mask, other=0.0).to(tl.float32)
            v = _reset(_charge(x, v, b, a, c, HAS_C, EXACT, FMA), thr, vr, HARD)
        tl.store(ckpt_ptr + k * N + n, v, mask=mask)
    # pass 2: chunks from the last to the first; gh carries dL/dH[t+1] between them
    gh = tl.zeros([BLOCK], tl.float32)
    acc = tl.zeros([BLOCK], tl.float32)
    for kk in range(n_chunks):
        k = n_chunks - 1 - kk
        if k > 0:
            v = tl.load(ckpt_ptr + (k - 1) * N + n, mask=mask, other=0.0)
        else:
            v = tl.zeros([BLOCK], tl.float32) + v0
        hs = ()
        us = ()
        for j in tl.static_range(C):
            valid = mask & (k * C + j < T)
            x = tl.load(x_ptr + (k * C + j) * N + n, mask=valid, other=0.0).to(tl.float32)
            h = _charge(x, v, b, a, c, HAS_C, EXACT, FMA)
            hs = hs + (h,)
            if WANT_GR:
                us = us + (x + vr - v,)
            v = _reset(h, thr, vr, HARD)
        for j in tl.static_range(C - 1, -1, -1):
            t = k * C + j
            valid = mask & (t < T)
            h = hs[j]
            gs = tl.load(gs_ptr + t * N + n, mask=valid, other=0.0).to(tl.float32)
            g = _surrogate_grad(h - thr, alpha, SID)
            if HARD:
                m = tl.where(h >= thr, 0.0, 1.0)
                if not DETACH:
                    m = m + (vr - h) * g
            else:
                if DETACH:
                    m = 1.0
                else:
                    m = 1.0 - thr * g
            gh = g * gs + m * (a * gh)
            tl.store(gx_ptr + t * N + n, (b * gh).to(gx_ptr.dtype.element_ty), mask=valid)
            if WANT_GR:
                acc += gh * us[j]
    if WANT_GR:
        tl.store(gr_ptr + pid, tl.sum(acc, axis=0))
