"""Native CPU kernel for the fused multi-step neurons: one pass over memory each way.

Why: on a CPU the PyTorch-ops fused kernel (``torch_kernel.fused_forward`` / ``fused_backward``)
needs ~2 full passes over the [T, ...] tensors plus 2 ops per time step forward, and ~7 full
passes plus 1 op per time step backward, each a separate trip through memory and through the
dispatcher. On the 784-512-512-10 benchmark (T=8, batch 64, 2 threads; benchmarks/) that costs
~1.25x the time of the same network with ReLU. This module instead compiles a small C kernel that
runs the time loop per neuron in registers, over blocks of neurons in parallel:

- forward: reads X once, writes S once (the same memory traffic as a ReLU);
- backward: reads X and dL/dS once, recomputes H for a block of neurons into a cache-resident
  scratch buffer, runs the adjoint recurrence backwards in time and writes dL/dX once. Saving X
  (the neuron's input, same size as H) instead of H saves a full write in the forward.

That brings the benchmark to ~1.05-1.1x ReLU.

How: the C source below is compiled on first use with the system C compiler (``$CC``, else
``cc``/``gcc``/``clang``; ``-O2 -ftree-vectorize -march=native -ffp-contract=off
-fno-trapping-math -fopenmp``, falling back to fewer flags) into ``$SPIKESCULPT_CACHE_DIR``
(default ``~/.cache/spikesculpt``), keyed by a hash of source, flags, compiler and CPU, and loaded with ``ctypes`` (the shared
helper ``spikesculpt/core/native_build.py``, also used by the sparse-inference kernel): no PyTorch
headers, a few seconds once per machine. OpenMP resolves to PyTorch's own ``libgomp`` (same
soname, already loaded), so the kernel shares PyTorch's thread pool and honours
``torch.set_num_threads``. After loading, a self-test checks that the native forward is
bit-identical to the PyTorch-ops path (the kernel reproduces PyTorch's roundings: the charge is
one fused multiply-add, as in PyTorch's ``add(alpha=)`` and ``addcmul``); if it is not, or if
anything fails (no compiler, Windows, read-only disk), the kernel is disabled with one warning and
the PyTorch path is used: the same results, only slower. ``SPIKESCULPT_NATIVE=0`` disables it;
``status()`` says what happened.

Scope: plain CPU tensors of dtype float32/float64 and the built-in surrogates, in eager mode.
Everything else (CUDA, half precision, custom surrogates, ``torch.compile`` tracing, dispatch
modes such as fake tensors or FLOP counters) uses the PyTorch path.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import torch

from spikesculpt.core import native_build
from spikesculpt.neurons import torch_kernel
from spikesculpt.neurons.surrogate import ATan, FastSigmoid, Sigmoid, Surrogate, Triangle

# The built-in surrogates the C kernel implements, by id (``sid`` in the C source below).
SURROGATE_IDS = {ATan: 0, Sigmoid: 1, Triangle: 2, FastSigmoid: 3}

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>
#include <math.h>

#define BLK 512
#define INL static inline __attribute__((always_inline))

/* exp(x) for x <= 0 without libm, so that loops using it vectorise: x = n·ln2 + r with
   |r| <= ln2/2, exp(r) by a Taylor polynomial (degree 7 for float, 12 for double; relative
   error ~1e-7 / ~1e-15), times 2^n assembled in the exponent bits. */
INL float exp_neg_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  float n = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f; p = p * r + 1.0f / 120.0f; p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f; p = p * r + 0.5f; p = p * r + 1.0f; p = p * r + 1.0f;
  union { int32_t i; float f; } u; u.i = ((int32_t)n + 127) << 23;
  return p * u.f;
}
INL double exp_neg_d(double x) {
  x = x < -708.0 ? -708.0 : x;
  double n = floor(x * 1.4426950408889634 + 0.5);
  double r = x - n * 0.693145751953125 - n * 1.4286068203094172e-06;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0; p = p * r + 1.0 / 3628800.0; p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0; p = p * r + 1.0 / 5040.0; p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0; p = p * r + 1.0 / 24.0; p = p * r + 1.0 / 6.0; p = p * r + 0.5;
  p = p * r + 1.0; p = p * r + 1.0;
  union { int64_t i; double f; } u; u.i = ((int64_t)n + 1023) << 52;
  return p * u.f;
}

/* Surrogate derivatives g'(u), u = H - V_th; ids as SURROGATE_IDS.
   sigmoid: α·σ(αu)(1-σ(αu)) = α·e/(1+e)² with e = exp(-α|u|) (even in u, no overflow). */
#define SURR(T, EXPNEG, FABS)                                                               \
INL T surr_##T(T u, const int sid, T al) {                                                  \
  if (sid == 0) { T k = (T)1.5707963267948966 * al * u; return al / (T)2 / ((T)1 + k * k); } \
  if (sid == 1) { T e = EXPNEG(-al * FABS(u)); T d = (T)1 + e; return al * e / (d * d); }    \
  if (sid == 2) { T g = al - al * al * FABS(u); return g > (T)0 ? g : (T)0; }                 \
  { T d = (T)1 + al * FABS(u); return al / (T)2 / (d * d); }                                  \
}

/* One neuron step, shared by forward and backward (so both see the same H):
   xs = x*b + c;  h = fma(a, v, xs)  -- the roundings of PyTorch's mul, add and add(alpha=) /
   addcmul (IF: b = a = 1, c = 0 gives exactly x + v);  v' = reset(h). */
#define CHARGE(T, FMA, xv, vv) FMA(a, (vv), (xv) * b + c)
#define RESET(hh) (hard ? ((hh) < thr ? (hh) : vr) : ((hh) >= thr ? (hh) - thr : (hh)))

/* Forward over neurons [j, j+m) of x, s (and h if store_h), all [nt, n] row-major:
   spikes s = [h >= thr]. */
#define FWD(T, SUF, FMA)                                                                     \
INL void fwd_body_##SUF(const T* restrict x, T* restrict s, T* restrict h, int64_t nt,       \
                        int64_t n, int64_t j, int64_t m, T b, T a, T c, const int hard,      \
                        T thr, T vr, T v0, const int store_h) {                              \
  T v[BLK];                                                                                  \
  for (int64_t i = 0; i < m; i++) v[i] = v0;                                                 \
  for (int64_t t = 0; t < nt; t++) {                                                         \
    const T* restrict xt = x + t * n + j;                                                    \
    T* restrict st = s + t * n + j;                                                          \
    T* restrict ht = store_h ? h + t * n + j : st;                                           \
    for (int64_t i = 0; i < m; i++) {                                                        \
      T hh = CHARGE(T, FMA, xt[i], v[i]);                                                    \
      if (store_h) ht[i] = hh;                                                               \
      st[i] = hh >= thr ? (T)1 : (T)0;                                                       \
      v[i] = RESET(hh);                                                                      \
    }                                                                                        \
  }                                                                                          \
}                                                                                            \
void neuron_fwd_##SUF(const T* x, T* s, T* h, int64_t nt, int64_t n, T b, T a, T c,          \
                      int hard, T thr, T vr, T v0) {                                         \
  _Pragma("omp parallel for schedule(static) if (n >= 16384)")                             \
  for (int64_t j = 0; j < n; j += BLK) {                                                     \
    int64_t m = n - j < BLK ? n - j : BLK;                                                   \
    if (h) {                                                                                 \
      if (hard) fwd_body_##SUF(x, s, h, nt, n, j, m, b, a, c, 1, thr, vr, v0, 1);            \
      else fwd_body_##SUF(x, s, h, nt, n, j, m, b, a, c, 0, thr, vr, v0, 1);                 \
    } else {                                                                                 \
      if (hard) fwd_body_##SUF(x, s, h, nt, n, j, m, b, a, c, 1, thr, vr, v0, 0);            \
      else fwd_body_##SUF(x, s, h, nt, n, j, m, b, a, c, 0, thr, vr, v0, 0);                 \
    }                                                                                        \
  }                                                                                          \
}

/* Backward over neurons [j, j+m): recompute H[0..nt) from x into the scratch hb (nt x bk,
   cache-resident), then run the adjoint recurrence backwards in time:
   gh = dL/dH[t] = gs*g' + gv*dV/dH with gv = dL/dV[t] = a*gh[t+1];
   dV/dH = (1-S) + (vr-h)*g' (hard), 1-S (hard, detached), 1 - thr*g' (soft), 1 (soft,
   detached); gx = b*gh. With want_gr (PLIF) also returns sum gh*(x + vr - V[t-1]). */
#define BWD(T, SUF, FMA, INLINE)                                                             \
INLINE double bwd_body_##SUF(const T* restrict gs, const T* restrict x, T* restrict gx,         \
                          T* restrict hb, int64_t bk, int64_t nt, int64_t n, int64_t j,      \
                          int64_t m, T b, T a, T c, const int hard, T thr, T vr, T v0,       \
                          const int detach, const int sid, T al, const int want_gr) {        \
  double acc = 0.0;                                                                          \
  T v[BLK];                                                                                  \
  for (int64_t i = 0; i < m; i++) v[i] = v0;                                                 \
  for (int64_t t = 0; t < nt; t++) {                                                         \
    const T* restrict xt = x + t * n + j; T* restrict hbt = hb + t * bk;                     \
    for (int64_t i = 0; i < m; i++) {                                                        \
      T hh = CHARGE(T, FMA, xt[i], v[i]);                                                    \
      hbt[i] = hh;                                                                           \
      v[i] = RESET(hh);                                                                      \
    }                                                                                        \
  }                                                                                          \
  T gv[BLK];                                                                                 \
  for (int64_t i = 0; i < m; i++) gv[i] = (T)0;                                              \
  for (int64_t t = nt - 1; t >= 0; t--) {                                                    \
    const T* restrict hbt = hb + t * bk; const T* restrict gt = gs + t * n + j;              \
    T* restrict ot = gx + t * n + j;                                                         \
    for (int64_t i = 0; i < m; i++) {                                                        \
      T hh = hbt[i];                                                                         \
      T sg = surr_##T(hh - thr, sid, al);                                                    \
      T dv = hard ? (hh < thr ? (T)1 : (T)0) + (detach ? (T)0 : (vr - hh) * sg)              \
                  : (detach ? (T)1 : (T)1 - thr * sg);                                       \
      T g = gt[i] * sg + gv[i] * dv;                                                         \
      ot[i] = b * g;                                                                         \
      gv[i] = a * g;                                                                         \
      if (want_gr) {                                                                         \
        T vp = v0;                                                                           \
        if (t > 0) { T q = hbt[i - bk]; vp = RESET(q); }                                     \
        acc += (double)g * (double)(x[t * n + j + i] + vr - vp);                             \
      }                                                                                      \
    }                                                                                        \
  }                                                                                          \
  return acc;                                                                                \
}                                                                                            \
INL double bwd_sid_##SUF(const T* gs, const T* x, T* gx, T* hb, int64_t bk, int64_t nt,      \
                         int64_t n, int64_t j, int64_t m, T b, T a, T c, const int hard,     \
                         T thr, T vr, T v0, const int detach, int sid, T al,                 \
                         const int want_gr) {                                                \
  switch (sid) {                                                                             \
    case 0: return bwd_body_##SUF(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, hard, thr, vr, v0, detach, 0, al, want_gr); \
    case 1: return bwd_body_##SUF(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, hard, thr, vr, v0, detach, 1, al, want_gr); \
    case 2: return bwd_body_##SUF(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, hard, thr, vr, v0, detach, 2, al, want_gr); \
    default: return bwd_body_##SUF(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, hard, thr, vr, v0, detach, 3, al, want_gr); \
  }                                                                                          \
}                                                                                            \
int neuron_bwd_##SUF(const T* gs, const T* x, T* gx, int64_t nt, int64_t n, T b, T a, T c,   \
                     int hard, T thr, T vr, int detach, int sid, T al, double* gr) {         \
  double acc = 0.0;                                                                          \
  int fail = 0;                                                                              \
  const T v0 = hard ? vr : (T)0;                                                             \
  int64_t bk = ((int64_t)1 << 16) / (nt > 0 ? nt : 1); /* scratch nt*bk <= 64K elements */  \
  bk = bk > BLK ? BLK : (bk < 16 ? 16 : bk & ~(int64_t)15);                                  \
  _Pragma("omp parallel if (n >= 16384) reduction(+:acc) reduction(|:fail)")               \
  {                                                                                          \
    T* hb = (T*)malloc(sizeof(T) * (size_t)(nt * bk));                                       \
    if (!hb) fail = 1;                                                                       \
    _Pragma("omp for schedule(static)")                                                    \
    for (int64_t j = 0; j < n; j += bk) {                                                    \
      if (!hb) continue;                                                                     \
      int64_t m = n - j < bk ? n - j : bk;                                                   \
      DISPATCH_##SUF                                                                         \
    }                                                                                        \
    free(hb);                                                                                \
  }                                                                                          \
  if (gr) gr[0] = acc;                                                                       \
  return fail;                                                                               \
}

/* float32 (training): one specialised body per (reset, detach, surrogate); PLIF's dL/db path
   and float64 (tests, checks) use one generic body with run-time flags. */
#define DISPATCH_f32                                                                         \
  if (gr) acc += bwd_body_f32(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, hard, thr, vr, v0, detach, sid, al, 1); \
  else if (hard && detach) bwd_sid_f32(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, 1, thr, vr, v0, 1, sid, al, 0); \
  else if (hard) bwd_sid_f32(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, 1, thr, vr, v0, 0, sid, al, 0);       \
  else if (detach) bwd_sid_f32(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, 0, thr, vr, v0, 1, sid, al, 0);     \
  else bwd_sid_f32(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, 0, thr, vr, v0, 0, sid, al, 0);
#define DISPATCH_f64                                                                         \
  acc += bwd_body_f64(gs, x, gx, hb, bk, nt, n, j, m, b, a, c, hard, thr, vr, v0, detach, sid, al, gr != 0);

SURR(float, exp_neg_f, fabsf)
SURR(double, exp_neg_d, fabs)
FWD(float, f32, fmaf)
FWD(double, f64, fma)
BWD(float, f32, fmaf, INL)
BWD(double, f64, fma, static __attribute__((noinline)))

int neuron_omp_threads(void) {
#ifdef _OPENMP
  extern int omp_get_max_threads(void);
  return omp_get_max_threads();
#else
  return 0;
#endif
}
"""


def _build() -> ctypes.CDLL:
    # -ffp-contract=off: no silent fused multiply-adds; the kernel writes fma() exactly where
    # PyTorch's CPU kernels use one, so results are bit-identical to the PyTorch path.
    # -fno-trapping-math (in native_build.BASE_FLAGS) changes no result (no FP traps are enabled); it
    # lets the selects and conversions in the loops be vectorised. Compile/cache/load: native_build.py.
    return native_build.build("neurons", _SRC, extra_flags=["-ffp-contract=off"])


def _declare(lib: ctypes.CDLL) -> None:
    i64, i32, p = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    for suf, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        fwd = getattr(lib, f"neuron_fwd_{suf}")
        fwd.argtypes = [p, p, p, i64, i64, real, real, real, i32, real, real, real]
        fwd.restype = None
        bwd = getattr(lib, f"neuron_bwd_{suf}")
        bwd.argtypes = [p, p, p, i64, i64, real, real, real, i32, real, real, i32, i32, real, p]
        bwd.restype = ctypes.c_int
    lib.neuron_omp_threads.restype = ctypes.c_int


@torch.no_grad()
def _self_test() -> None:
    """The native forward (spikes and H) must be bit-identical to the PyTorch-ops forward."""

    g = torch.Generator().manual_seed(0)
    plif = torch.sigmoid(torch.tensor(-0.3))
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(6, 3, 4099, generator=g, dtype=dtype) * 1.3 + 0.4
        for r, v_reset in ((0.37, 0.0), (1 / 3, None), (None, 0.0), (None, None), (0.5, -0.25),
                           (plif, 0.0), (plif, None), (plif, 0.3)):
            s0, nh = torch_kernel.fused_forward(x, r, 1.0, v_reset)
            s1, h = forward(x, r, 1.0, v_reset, want_h=True)
            if not (torch.equal(s0, s1) and torch.equal(-nh, h)):
                raise RuntimeError("native forward differs from the PyTorch path "
                                   f"({dtype}, decay={r}, v_reset={v_reset})")


KERNEL = native_build.NativeKernel("neuron", _build, _declare, _self_test,
                                   lambda lib: lib.neuron_omp_threads(), "the PyTorch path")


library, available, status = KERNEL.library, KERNEL.available, KERNEL.status


def surrogate_id(surrogate: Surrogate) -> Optional[int]:
    """Id of a built-in surrogate in the C kernel, None for any other (exact type only: a
    subclass may redefine g')."""
    return SURROGATE_IDS.get(type(surrogate))


DTYPES = (torch.float32, torch.float64)


def handles(x: torch.Tensor, surrogate: Surrogate) -> bool:
    """Whether the kernel can compute this call (it may still be unavailable, ``available()``):
    a CPU float32/float64 tensor and a built-in surrogate."""
    return (x.dtype in DTYPES and x.device.type == "cpu"
            and surrogate_id(surrogate) is not None)


def scalars(r, v_reset: Optional[float]) -> tuple[float, float, float]:
    """(b, a, c) of the charge ``h = fma(a, v, x*b + c)`` with exactly the roundings of the
    PyTorch path (``torch_kernel.neg_input`` / ``functional._charge_lif``): r is a float (LIF), a 0-dim
    tensor (PLIF: the products are rounded in its dtype) or None (IF: b = a = 1, c = 0)."""
    if r is None:
        return 1.0, 1.0, 0.0
    if isinstance(r, torch.Tensor):
        r = r.detach()
        c = float(r * v_reset) if v_reset is not None and v_reset != 0.0 else 0.0
        return float(r), float(1.0 - r), c
    c = r * v_reset if v_reset is not None and v_reset != 0.0 else 0.0
    return r, 1.0 - r, c


def forward(x: torch.Tensor, r, v_threshold: float, v_reset: Optional[float],
            want_h: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Spikes for all t (and, if ``want_h``, the pre-spike membrane H); one pass over x."""
    lib = KERNEL.lib
    x = x.contiguous()
    nt = x.shape[0]
    n = x.numel() // nt if nt else 0
    s = torch.empty_like(x)
    h = torch.empty_like(x) if want_h else None
    if n == 0:
        return s, h
    b, a, c = scalars(r, v_reset)
    hard = v_reset is not None
    vr = v_reset if hard else 0.0
    fn = lib.neuron_fwd_f32 if x.dtype == torch.float32 else lib.neuron_fwd_f64
    fn(x.data_ptr(), s.data_ptr(), h.data_ptr() if want_h else None, nt, n, b, a, c, int(hard),
       v_threshold, vr, vr)
    return s, h


def backward(gs: torch.Tensor, x: torch.Tensor, r, v_threshold: float, v_reset: Optional[float],
             detach_reset: bool, sid: int, alpha: float, want_gr: bool
             ) -> tuple[torch.Tensor, Optional[float]]:
    """dL/dX (and, if ``want_gr``, dL/d(decay) for PLIF) from dL/dS and the saved input X;
    H is recomputed from X inside the kernel, exactly as in the forward."""
    lib = KERNEL.lib
    x = x.contiguous()
    gs = gs.to(x.dtype).contiguous()
    nt = x.shape[0]
    n = x.numel() // nt
    gx = torch.empty_like(x)
    b, a, c = scalars(r, v_reset)
    hard = v_reset is not None
    acc = ctypes.c_double(0.0)
    fn = lib.neuron_bwd_f32 if x.dtype == torch.float32 else lib.neuron_bwd_f64
    fail = fn(gs.data_ptr(), x.data_ptr(), gx.data_ptr(), nt, n, b, a, c, int(hard),
              v_threshold, v_reset if hard else 0.0, int(detach_reset), sid, alpha,
              ctypes.byref(acc) if want_gr else None)
    if fail:
        raise MemoryError("native neuron backward: out of memory for its scratch buffer")
    return gx, (acc.value if want_gr else None)
