"""GPU kernel of the fused multi-step neurons: Triton, one launch forward and one backward.

Why: on a GPU the PyTorch-ops fused kernel (``torch_kernel.py``) runs a time loop of small ops,
2 launches per step forward and 1 per step backward plus ~10 whole-tensor ops, so a small SNN is
bound by launch overhead (issue 16: LIF MLP 784-512-512-10, batch 256, T = 8 on an H200 at 1.86×
the ReLU network's step). The kernels in ``triton_kernels.py`` run the whole ``[T, B, ...]``
sequence per neuron with the membrane in registers: forward reads X and writes S (the traffic of
a ReLU); backward recomputes H from the saved X (so no float membrane is stored between forward
and backward) and reads dL/dS and writes dL/dX once.

Memory kept for the backward, per neuron per step: the input X in its own dtype (4 bytes in
float32, 2 under AMP in bf16/fp16), against SpikingJelly 2.0's Triton LIF, which stores the
float32 membrane H (4 bytes) whatever the input's dtype. The spikes are the next layer's saved
input in both.

Scope: CUDA tensors of dtype float32, float16 or bfloat16 (arithmetic in float32; spikes in the
input's dtype), the built-in surrogates, LIF / IF / PLIF, hard or soft reset, detached or not, in
eager mode. Float32 spikes are bit-identical to the PyTorch-ops path (same roundings, see
``triton_kernels.py``); in half precision they equal the PyTorch path run on the input upcast to
float32 (which is more exact than the PyTorch path in half precision, whose every op rounds to
the half type). Everything else, and any machine without Triton, uses the PyTorch path.
``SPIKESCULPT_TRITON=0`` turns the kernel off; ``status()`` says which applies.

Launching goes through Triton's own launcher. Calling the compiled kernel directly, to skip the
launcher's argument binding, was tried and measured slower on an H200
(``benchmarks/results/neuron_kernel_nvidia-h200_16t_*_7d09ede.json``).

Testing without a GPU: with ``TRITON_INTERPRET=1`` (set before Triton is imported), Triton runs
the same kernels on CPU tensors through numpy; ``impl="triton"`` then accepts CPU tensors (the
test suite does this; it is slow, for tests only).
"""

from __future__ import annotations

import os
import warnings
from typing import Optional

import torch

from spikesculpt.neurons import cpu_kernel, torch_kernel
from spikesculpt.neurons.surrogate import Surrogate

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
#: neurons per program; the backward holds C membranes per neuron in registers
BLOCK_FORWARD = 512
BLOCK_BACKWARD = 256
#: longest chunk of time steps the backward keeps in registers (T above it: checkpoints)
MAX_CHUNK = 16

_state = {"kernels": None, "error": None, "tested": False, "fma": True}


def interpreting() -> bool:
    """Whether Triton runs in its CPU interpreter (``TRITON_INTERPRET=1``, read at import)."""
    return INTERPRETING


INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _kernels():
    """The ``triton_kernels`` module, or None (no Triton, turned off, or broken)."""
    if _state["kernels"] is None and _state["error"] is None:
        if os.environ.get("SPIKESCULPT_TRITON", "1") == "0":
            _state["error"] = "off (SPIKESCULPT_TRITON=0)"
        else:
            try:
                import spikesculpt.neurons.triton_kernels as triton_kernels

                _state["kernels"] = triton_kernels
            except Exception as e:  # ImportError, or a Triton that fails to import
                _state["error"] = f"unavailable ({type(e).__name__}: {e})"
    return _state["kernels"]


def available() -> bool:
    """Triton imports (and is not turned off)."""
    return _kernels() is not None


def status() -> str:
    """One line: which GPU neuron kernel a CUDA tensor gets, and why."""
    if _kernels() is None:
        return f"Triton kernel {_state['error']}; CUDA tensors use the PyTorch-ops path"
    import triton

    mode = "interpreter (TRITON_INTERPRET=1)" if interpreting() else "compiled"
    return f"Triton {triton.__version__} kernel, {mode}"


def applies(x: torch.Tensor, surrogate: Surrogate) -> bool:
    """The kernel can run this call: a CUDA tensor (a CPU one under the interpreter) of a
    supported dtype, a built-in surrogate, and Triton available. The first CUDA call runs a
    self-test (spikes bit-identical to the PyTorch path); if it fails, the kernel is switched
    off with one warning and every call takes the PyTorch path."""
    on_device = x.is_cuda or (interpreting() and x.device.type == "cpu")
    if not (on_device and x.dtype in DTYPES and type(x) is torch.Tensor
            and cpu_kernel.surrogate_id(surrogate) is not None and available()):
        return False
    if x.is_cuda and not _state["tested"]:
        _state["tested"] = True
        try:
            _self_test(x.device)
        except Exception as e:  # compile error, unsupported GPU, wrong result
            _state["kernels"], _state["error"] = None, f"failed its self-test ({e})"
            warnings.warn(f"spikesculpt: Triton neuron kernel {_state['error']}; using the "
                          "PyTorch-ops path", RuntimeWarning, stacklevel=3)
            return False
    return True


def _self_test(device: torch.device) -> None:
    """The kernel's membrane H and spikes must equal the PyTorch path's bit for bit (LIF,
    tau = 2.7, 8 steps, 20,000 neurons: the two roundings of the charge differ in many H).
    Picks the charge's rounding (one FMA, or a rounded product and a sum) that matches."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.randn(8, 20_000, generator=g) * 0.7 + 0.45).to(device)
    s_ref, nh = torch_kernel.fused_forward(x, 1 / 2.7, 1.0, 0.0)
    diffs = []
    for fma in (True, False):
        _state["fma"] = fma
        s, h = forward(x, 1 / 2.7, 1.0, 0.0, want_h=True)
        if torch.equal(h, -nh) and torch.equal(s, s_ref):
            return
        diffs.append(int((h != -nh).sum()))
    raise RuntimeError(f"{min(diffs)} of {nh.numel()} membrane values differ from the PyTorch "
                       "path's")


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


_DUMMIES: dict = {}


def _dummy(device: torch.device) -> torch.Tensor:
    """A one-element float32 buffer for pointer arguments a configuration never touches."""
    buf = _DUMMIES.get(device)
    if buf is None:
        buf = _DUMMIES[device] = torch.zeros(1, dtype=torch.float32, device=device)
    return buf


def _scalars(r, v_reset: Optional[float], device: torch.device):
    """Kernel arguments for the decay: (r_ptr or None, b, a, c, PLIF, HAS_C)."""
    has_c = v_reset is not None and v_reset != 0.0
    if isinstance(r, torch.Tensor):  # PLIF: read from memory inside the kernel (no sync)
        return (r.detach().to(device=device, dtype=torch.float32).reshape(1), 1.0, 0.0, 0.0,
                True, has_c)
    b, a, c = cpu_kernel.scalars(r, v_reset)
    return None, b, a, c, False, has_c


def forward(x: torch.Tensor, r, v_threshold: float, v_reset: Optional[float],
            want_h: bool = False):
    """Spikes ``S[T, ...]`` (dtype of x) from the input current ``x[T, ...]``; r = 1/tau as a
    float (LIF), a 0-dim tensor (PLIF) or None (IF). ``want_h``: return ``(S, H)`` with the
    float32 membrane H before the spike (for tests; training never stores it)."""
    k = _kernels()
    x = x.contiguous()
    nt = x.shape[0]
    n = x.numel() // nt if nt else 0
    s = torch.empty_like(x)
    h = torch.empty(x.shape, dtype=torch.float32, device=x.device) if want_h else None
    if n == 0:
        return (s, h) if want_h else s
    r_ptr, b, a, c, plif, has_c = _scalars(r, v_reset, x.device)
    dummy = _dummy(x.device)
    r_ptr = dummy if r_ptr is None else r_ptr
    hard = v_reset is not None
    vr = float(v_reset) if hard else 0.0
    k.neuron_forward[(_cdiv(n, BLOCK_FORWARD),)](
        x, s, h if want_h else dummy, r_ptr, n, b, a, c, float(v_threshold), vr, vr,
        T=nt, PLIF=plif, HAS_C=has_c, HARD=hard, EXACT=not INTERPRETING, FMA=_state["fma"],
        STORE_H=want_h, BLOCK=BLOCK_FORWARD, num_warps=4)
    return (s, h) if want_h else s


def backward(gs: torch.Tensor, x: torch.Tensor, r, v_threshold: float,
             v_reset: Optional[float], detach_reset: bool, surrogate: Surrogate,
             want_gr: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``dL/dX`` (dtype of x) from ``dL/dS`` and the saved input x, and for PLIF (``want_gr``)
    ``dL/dr`` as a 0-dim float32 tensor (summed over programs on the device, no sync)."""
    k = _kernels()
    x = x.contiguous()
    gs = gs.contiguous()
    nt = x.shape[0]
    n = x.numel() // nt
    gx = torch.empty_like(x)
    chunk = min(nt, MAX_CHUNK)
    n_chunks = _cdiv(nt, chunk)
    n_programs = _cdiv(n, BLOCK_BACKWARD)
    dummy = _dummy(x.device)
    ckpt = (torch.empty((n_chunks - 1, n), dtype=torch.float32, device=x.device)
            if n_chunks > 1 else dummy)
    gr = torch.empty(n_programs, dtype=torch.float32, device=x.device) if want_gr else dummy
    r_ptr, b, a, c, plif, has_c = _scalars(r, v_reset, x.device)
    r_ptr = dummy if r_ptr is None else r_ptr
    hard = v_reset is not None
    vr = float(v_reset) if hard else 0.0
    k.neuron_backward[(n_programs,)](
        gs, x, gx, r_ptr, ckpt, gr, n, b, a, c, float(v_threshold), vr, vr,
        float(surrogate.alpha), T=nt, PLIF=plif, HAS_C=has_c, HARD=hard,
        DETACH=bool(detach_reset), SID=cpu_kernel.surrogate_id(surrogate),
        WANT_GR=bool(want_gr), EXACT=not INTERPRETING, FMA=_state["fma"], C=chunk,
        BLOCK=BLOCK_BACKWARD, num_warps=4)
    return gx, (gr.sum() if want_gr else None)
