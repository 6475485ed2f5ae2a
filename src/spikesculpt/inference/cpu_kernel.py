"""Native CPU kernels for sparse linear layers: ``y = x Wᵀ + b`` with W sparse, x mostly zeros.

Two kernels, both skipping every zero weight; which one is faster depends on the input's
activity a (fraction of nonzero inputs), so ``SparseLinear`` picks per call:

``rows`` (vectorised, weights by output, CSR)
    For blocks of 64 input rows (rows = time steps × samples), the block is transposed once into
    a ``[in, 64]`` scratch (16x16 / 8x8 tiles transposed in AVX-512 / AVX registers); then for
    each output j and each nonzero ``W[j, i]``: ``acc[0:64] += W[j, i] · xᵀ[i, 0:64]`` — 64 / VW
    fused multiply-adds of the target's widest vectors (GCC/Clang vector extensions, VW = 16
    floats with AVX-512, 8 with AVX/AVX2, 4 otherwise: SSE, NEON), the accumulators in
    registers (loops fully unrolled: GCC -O2 had kept them in memory, which cost 2–4× on AVX2),
    and the input rows of the nonzero ``PD`` = 8 ahead prefetched (the scratch lives in L2).
    Work ∝ density × rows × in × out at about half the per-element speed of a dense GEMM on an
    AVX2 CPU, so the speed-up over dense is about 0.5 / density whatever the activity, less the
    fixed cost of the two transpositions at very low density. Silent inputs are multiplied by
    zero in the lanes, not skipped: skipping them costs more than it saves unless activity × 64
    ≪ 1. **Spike blocks on AVX2** ("triples"; every input of the block 0 or 1, checked while
    packing): each output's nonzeros are grouped in threes with a table of their 8 subset sums
    ``T[s] = Σ_{b ∈ s} w_b`` (``triples_by_output``, built once at conversion); the block's 64
    rows of input i are packed as 8 lanes of 32 bits, lane l bit 3q = x[8q + l, i], so that
    ``V[i1] + 2 V[i2] + 4 V[i3]`` holds every row's 3-bit subset index, and one in-register
    table lookup (``vpermps``) per 8 rows adds three weights at once: ~3 vector operations per
    three nonzeros and 8 rows instead of ~2 per nonzero and 8 rows, from a packed input of 32
    bytes per input (L1) instead of 256 (L2), and no float transposition. Measured 1.4–2.3x
    faster than the float path on spikes (AMD EPYC Zen 3, 2 threads). Sums are grouped by
    three (the table holds w1 + w2 + w3), so they round differently from the float path, within
    float32 rounding. Other blocks (analog input, the first layer) and CPUs without AVX2 take
    the float path; after an analog block a thread stops trying to pack. On AVX-512 CPUs the
    packing takes 16 inputs at a time: each row's 16 spike bits come from one compare into a
    mask register and are OR-ed (masked) into the lanes as bit 3q, then transposed into V
    (``pack_triples16``; a whole 784→512 call at density 0.02 ~10% faster on an AMD EPYC
    Zen 4, 2 threads, where the packing had been ~25% of it).
``events`` (event-driven, weights by input, CSC)
    For each row, each nonzero input x_i (a spike): ``y[row, W[:, i] ≠ 0] += x_i · W[:, i]``
    (for spikes x_i = 1, a pure accumulate). Work ∝ activity × density × rows × in × out — the
    effective SynOps — but scalar scatter-adds, ~10–20× slower per operation than the lanes of
    ``rows``. It wins when few inputs are active: measured crossover activity ≈ 0.02 since the
    spike path (1024→1024, density 0.1, AMD EPYC Zen 3, 2 threads; 0.03–0.06 before it, Zen 5,
    1 thread; benchmarks/bench_sparse_inference.py), so ``auto`` uses it below
    ``EVENT_ACTIVITY`` = 0.02, estimated from up to 32 evenly spaced rows of the input.

Both are OpenMP-parallel (over row blocks × output tiles, or over rows) and share PyTorch's
thread pool (the same libgomp), so ``torch.set_num_threads`` applies. Sums run in another order
than PyTorch's dense GEMM: results agree to float32 rounding (checked at load), not bit for bit.

The source is compiled on first use by the shared helper ``core/native_build.py`` (cached per
machine); after loading, a self-test compares both kernels with ``torch.nn.functional.linear``. If
anything fails (no compiler, not POSIX, self-test), ``available()`` is False, one warning is
issued, and ``SparseLinear`` uses PyTorch's CSR matmul instead: the same results, slower.
``SPIKESCULPT_NATIVE=0`` disables it. Scope: CPU float32 tensors.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import torch

from spikesculpt.core import native_build

EVENT_ACTIVITY = 0.02  # below this input activity, the event-driven kernel is used ("auto")

TRIPLE_STEP_C = r"""
/* One triple's step of the spike paths (shared by cpu_kernel.py and conv_kernel.py): for 8
   lanes, the 3-bit subset index of row group q sits at bits 3q..3q+2 of
   V1 + 2 V2 + 4 V3; a[q] += tab[index] for q < nq (nq a constant after inlining). */
static inline __attribute__((always_inline)) void triple_step(
    __m256* a, const uint32_t* v1, const uint32_t* v2, const uint32_t* v3, const float* tab8,
    const int nq) {
  __m256i idx = _mm256_loadu_si256((const __m256i*)v1);
  idx = _mm256_add_epi32(idx, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i*)v2), 1));
  idx = _mm256_add_epi32(idx, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i*)v3), 2));
  const __m256 tab = _mm256_loadu_ps(tab8);
  UNROLL for (int q = 0; q < 8; q++) {
    if (q < nq) {
      a[q] = _mm256_add_ps(a[q], _mm256_permutevar8x32_ps(tab, idx));
      idx = _mm256_srli_epi32(idx, 3);
    }
  }
}
"""

_SRC = r"""

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* Accumulators and transposed tiles must live in registers: unroll their loops fully (GCC -O2
   kept such loops over arrays in memory, a load-op-store chain per vector: 4x slower on AVX2). */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define UNROLL _Pragma("GCC unroll 16")
#else
#define UNROLL
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
/* In-register transpose of a 16x16 float block: r[i] = row i -> r[j] = column j. */
static inline void tr16(__m512 r[16]) {
  __m512 t[16];
  UNROLL for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  UNROLL for (int i = 0; i < 16; i += 4) {
    __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  UNROLL for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  UNROLL for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
  }
}
#endif
#if defined(__AVX__)
#include <immintrin.h>
/* In-register transpose of an 8x8 float block: r[i] = row i -> r[j] = column j. */
static inline void tr8(__m256 r[8]) {
  __m256 t[8], u[8];
  UNROLL for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  UNROLL for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  UNROLL for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
#endif

#if defined(__AVX2__)
/* Binary (spike) blocks on AVX2 / AVX-512: "triples". Each output's nonzeros are grouped in
   threes (i1, i2, i3) with a table of the 8 subset sums T[s] = sum of w_b over the bits b of s
   (built once, at conversion). A block's 64 rows of input i are packed as 8 lanes of 32 bits,
   V[i] lane l bit 3q = x[8q + l, i] (0 / 1); then c = V[i1] + 2 V[i2] + 4 V[i3] holds, for
   rows 8q + l, the 3-bit subset index at bits 3q..3q+2, and one in-register table lookup
   (vpermps, which reads the index's low 3 bits) adds three weights to 8 rows at once. */
#define TRIPLES 1
/* One 8 x 8 tile of pack_triples: rows r0 + 8q .. +7, inputs g .. g+7, OR-ed into V. */
static inline __m256 pack_tile(const float* x, int64_t r0, int64_t f, int64_t g, int q,
                               int rows, uint32_t* V, __m256 bad) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  __m256 t[8];
  UNROLL for (int k = 0; k < 8; k++) {  /* spike masks of rows 8q + k < 8q + rows, inputs g.. */
    if (k < rows) {
      const __m256 v = _mm256_loadu_ps(x + (r0 + 8 * q + k) * f + g);
      t[k] = _mm256_cmp_ps(v, zero, _CMP_NEQ_UQ);
      bad = _mm256_or_ps(bad, _mm256_xor_ps(t[k], _mm256_cmp_ps(v, one, _CMP_EQ_OQ)));
    } else {
      t[k] = zero;  /* a partial block's missing rows: no spikes */
    }
  }
  tr8(t);  /* t[k]: input g + k, lanes = rows 8q .. 8q+7 */
  const __m256i bit = _mm256_set1_epi32(1 << (3 * q));
  UNROLL for (int k = 0; k < 8; k++) {
    __m256i* dst = (__m256i*)(V + (g + k) * 8);
    const __m256i mk = _mm256_and_si256(_mm256_castps_si256(t[k]), bit);
    _mm256_store_si256(dst, q ? _mm256_or_si256(_mm256_load_si256(dst), mk) : mk);
  }
  return bad;
}

#if defined(__AVX512F__)
/* AVX-512 packing, 16 inputs at a time: the spike bits of row r = 8q + l, inputs g .. g+15,
   come as one compare mask and are OR-ed (masked) into R[l] as bit 3q, so R[l] lane i =
   V[g + i] lane l; the 8 x 16 words R are then transposed into V (8x8 transposes of both
   halves at once). Binary check: v - v*v is 0 exactly for v = 0 or 1 (one FMA), and nonzero
   for any other value (NaN, -0, infinities included). Returns the inputs packed (a multiple
   of 16), or -1 if some value is not 0 or 1. */
static int64_t pack_triples16(const float* x, int64_t r0, int64_t m, int64_t f, uint32_t* V) {
  const __m512 zero = _mm512_setzero_ps();
  __m512i bad = _mm512_setzero_si512();
  int64_t g = 0;
  for (; g + 16 <= f; g += 16) {
    __m512i R[8];
    UNROLL for (int l = 0; l < 8; l++) R[l] = _mm512_setzero_si512();
    for (int q = 0; q < 8; q++) {
      const __m512i bit = _mm512_set1_epi32(1 << (3 * q));
      UNROLL for (int l = 0; l < 8; l++) {
        if (8 * q + l < m) {
          const __m512 v = _mm512_loadu_ps(x + (r0 + 8 * q + l) * f + g);
          bad = _mm512_or_si512(bad, _mm512_castps_si512(_mm512_fnmadd_ps(v, v, v)));
          R[l] = _mm512_mask_or_epi32(R[l], _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ), R[l], bit);
        }
      }
    }
    __m512i t[8], u[8];
    UNROLL for (int i = 0; i < 8; i += 2) {
      t[i] = _mm512_unpacklo_epi32(R[i], R[i + 1]);
      t[i + 1] = _mm512_unpackhi_epi32(R[i], R[i + 1]);
    }
    UNROLL for (int i = 0; i < 8; i += 4) {
      u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
      u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
      u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
      u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    UNROLL for (int i = 0; i < 4; i++) {  /* 128-bit lanes [a0 b0 a2 b2] and [a1 b1 a3 b3] */
      const __m512i lo = _mm512_shuffle_i32x4(u[i], u[i + 4], 0x88);  /* a0 a2 b0 b2 */
      const __m512i hi = _mm512_shuffle_i32x4(u[i], u[i + 4], 0xdd);  /* a1 a3 b1 b3 */
      const __m512i c0 = _mm512_shuffle_i32x4(lo, lo, 0xd8);  /* a0 b0 a2 b2 */
      const __m512i c1 = _mm512_shuffle_i32x4(hi, hi, 0xd8);
      _mm256_store_si256((__m256i*)(V + (g + i) * 8), _mm512_castsi512_si256(c0));
      _mm256_store_si256((__m256i*)(V + (g + 8 + i) * 8), _mm512_extracti64x4_epi64(c0, 1));
      _mm256_store_si256((__m256i*)(V + (g + 4 + i) * 8), _mm512_castsi512_si256(c1));
      _mm256_store_si256((__m256i*)(V + (g + 12 + i) * 8), _mm512_extracti64x4_epi64(c1, 1));
    }
  }
  return _mm512_test_epi32_mask(bad, bad) ? -1 : g;
}
#endif
/* Pack rows r0 .. r0+m-1 (m <= 64) of x[n, f] into V[f][8]; returns 1 if every value is 0 or 1
   (else 0, V undefined). 128 inputs at a time, 8 rows by 8 rows: rows f floats apart often
   share L1's sets (f = 1024: all of them), and 8 inputs at a time ran 2-3x slower at f = 1024
   or 4096 than at 784 (measured; 64 and 128 were best). Rows missing from a partial block
   (m < 64) are packed as zeros. */
static int pack_triples(const float* x, int64_t r0, int64_t m, int64_t f, uint32_t* V) {
  __m256 bad = _mm256_setzero_ps();  /* lanes where some value was neither 0 nor 1 */
  const int nq = (int)((m + 7) / 8);
  int64_t g = 0;
#if defined(__AVX512F__)
  g = pack_triples16(x, r0, m, f, V);  /* all but the last f % 16 inputs */
  if (g < 0) return 0;
#endif
  for (; g + 128 <= f; g += 128)
    for (int q = 0; q < nq; q++) {
      const int rows = m - 8 * q < 8 ? (int)(m - 8 * q) : 8;
      for (int h = 0; h < 128; h += 8) bad = pack_tile(x, r0, f, g + h, q, rows, V, bad);
    }
  for (; g + 8 <= f; g += 8)
    for (int q = 0; q < nq; q++)
      bad = pack_tile(x, r0, f, g, q, m - 8 * q < 8 ? (int)(m - 8 * q) : 8, V, bad);
  if (_mm256_movemask_ps(bad)) return 0;
  for (int64_t i = g; i < f; i++) {  /* the last f % 8 inputs */
    uint32_t lanes[8] = {0};
    for (int64_t r = 0; r < m; r++) {
      const float val = x[(r0 + r) * f + i];
      if (val == 0.0f) continue;
      if (val != 1.0f) return 0;
      lanes[r & 7] |= 1u << (3 * (r >> 3));
    }
    memcpy(V + i * 8, lanes, sizeof lanes);
  }
  return 1;
}

""" + TRIPLE_STEP_C + r"""
/* The spike path's sums for outputs j0 .. j0+mj-1 of a packed block V: acc[jj][8q + l] for row
   groups q < nq (a constant after inlining: 8, or 1 for blocks of at most 8 rows). */
static inline __attribute__((always_inline)) void triples_tile(
    const uint32_t* V, int64_t j0, int64_t mj, const int64_t* gptr, const int32_t* gcols,
    const float* gtab, const int nq, float acc[][64]) {
  for (int64_t jj = 0; jj < mj; jj++) {
    __m256 a[8];
    UNROLL for (int q = 0; q < 8; q++) a[q] = _mm256_setzero_ps();
    const int64_t j = j0 + jj;
    for (int64_t g = gptr[j]; g < gptr[j + 1]; g++) {
      const int32_t* c = gcols + 3 * g;
      triple_step(a, V + (int64_t)c[0] * 8, V + (int64_t)c[1] * 8, V + (int64_t)c[2] * 8,
                  gtab + 8 * g, nq);
    }
    UNROLL for (int q = 0; q < 8; q++)
      if (q < nq) _mm256_storeu_ps(&acc[jj][q * 8], a[q]);
  }
}
#endif

/* Vector width in floats: the widest the target has. Wider generic vectors than the target's
   registers are lowered badly by GCC (a 64-byte vector on an AVX2-only CPU ran ~20x slower). */
#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
typedef float vf __attribute__((vector_size(VW * 4)));
#define RB 64   /* input rows per block */
#if defined(TRIPLES) && RB != 64
#error "the triples path assumes 64-row blocks"
#endif
#define JT 16   /* outputs per tile */
#define NACC (RB / VW)  /* accumulators per output: RB rows */
#ifndef PD
#define PD 8           /* prefetch distance, in nonzeros */
#endif

static inline vf ldv(const float* p) { vf v; memcpy(&v, p, sizeof v); return v; }

/* y[n, o] = bias + x[n, f] W^T with W as CSR by output (rowptr[o+1], cols, vals).
   Returns 0, or 1 if a scratch buffer could not be allocated. */
int sl_rows_f32(const float* x, int64_t n, int64_t f, int64_t o, const int64_t* rowptr,
                const int32_t* cols, const float* vals, const int64_t* gptr,
                const int32_t* gcols, const float* gtab, const float* bias, float* y) {
  const int64_t nb = (n + RB - 1) / RB, nj = (o + JT - 1) / JT;
  const double work = (double)n * (double)(rowptr[o] + f);
  int fail = 0;
  #pragma omp parallel if (work > 2e5) reduction(|:fail)
  {
    float* xt = (float*)malloc(sizeof(float) * (size_t)(f * RB) + 64);
    float acc[JT][RB];
    int64_t cur = -1;
    if (!xt) fail = 1;
#ifdef TRIPLES
    void* Vraw = gptr ? malloc(sizeof(uint32_t) * 8 * (size_t)f + 32) : 0;
    uint32_t* V = (uint32_t*)(((uintptr_t)Vraw + 31) & ~(uintptr_t)31);  /* 32-byte aligned */
    int binary = 0, try_pack = gptr != 0;  /* an analog block stops the packing tries */
    if (gptr && !Vraw) fail = 1;
#else
    (void)gptr; (void)gcols; (void)gtab;
#endif
    #pragma omp for schedule(static)
    for (int64_t t = 0; t < nb * nj; t++) {
      if (fail) continue;
      const int64_t b = t / nj, jt = t % nj;
      const int64_t r0 = b * RB, m = n - r0 < RB ? n - r0 : RB;
      const int newblock = b != cur;
      cur = b;
#ifdef TRIPLES
      if (newblock) {
        binary = try_pack && pack_triples(x, r0, m, f, V);
        try_pack = binary;
      }
      if (newblock && !binary) {  /* transpose the block into xt[f][RB], zero-padded */
#else
      if (newblock) {  /* transpose the block into xt[f][RB], zero-padded */
#endif
        if (m < RB) memset(xt, 0, sizeof(float) * (size_t)(f * RB));
        int64_t fdone = 0;
#if defined(__AVX512F__)
        if (m == RB) {  /* full blocks: 16x16 tiles transposed in registers */
          for (; fdone + 16 <= f; fdone += 16) {
            for (int64_t rg = 0; rg < RB; rg += 16) {
              __m512 t[16];
              UNROLL for (int k = 0; k < 16; k++)
                t[k] = _mm512_loadu_ps(x + (r0 + rg + k) * f + fdone);
              tr16(t);
              UNROLL for (int k = 0; k < 16; k++)
                _mm512_storeu_ps(xt + (fdone + k) * RB + rg, t[k]);
            }
          }
        }
#elif defined(__AVX__)
        if (m == RB) {  /* full blocks: 8x8 tiles transposed in registers */
          for (; fdone + 8 <= f; fdone += 8) {
            for (int64_t rg = 0; rg < RB; rg += 8) {
              __m256 t[8];
              UNROLL for (int k = 0; k < 8; k++)
                t[k] = _mm256_loadu_ps(x + (r0 + rg + k) * f + fdone);
              tr8(t);
              UNROLL for (int k = 0; k < 8; k++)
                _mm256_storeu_ps(xt + (fdone + k) * RB + rg, t[k]);
            }
          }
        }
#endif
        for (int64_t i0 = fdone; i0 < f; i0 += 16) {
          const int64_t mi = f - i0 < 16 ? f - i0 : 16;
          for (int64_t r = 0; r < m; r++) {
            const float* xr = x + (r0 + r) * f + i0;
            for (int64_t ii = 0; ii < mi; ii++) xt[(i0 + ii) * RB + r] = xr[ii];
          }
        }
      }
      const int64_t j0 = jt * JT, mj = o - j0 < JT ? o - j0 : JT;
#ifdef TRIPLES
      if (binary) {
        if (m <= 8)  /* one row group (T x B <= 8: a batch of 1): 1/8 of the lookups */
          triples_tile(V, j0, mj, gptr, gcols, gtab, 1, acc);
        else
          triples_tile(V, j0, mj, gptr, gcols, gtab, 8, acc);
      } else
#endif
      for (int64_t jj = 0; jj < mj; jj++) {
        vf a[NACC];
        UNROLL for (int q = 0; q < NACC; q++) a[q] = (vf){0};
        const int64_t j = j0 + jj;
        const int64_t k1 = rowptr[j + 1], kend = rowptr[j0 + mj];  /* across outputs too */
        for (int64_t k = rowptr[j]; k < k1; k++) {
          const float* xc = xt + (int64_t)cols[k] * RB;
          if (k + PD < kend) {  /* a later nonzero's input row: hide the cache misses */
            const float* pf = xt + (int64_t)cols[k + PD] * RB;
            UNROLL for (int q = 0; q < RB; q += 16) __builtin_prefetch(pf + q);
          }
          const vf wv = (vf){0} + vals[k];  /* broadcast */
          UNROLL for (int q = 0; q < NACC; q++) a[q] += wv * ldv(xc + q * VW);
        }
        UNROLL for (int q = 0; q < NACC; q++) memcpy(&acc[jj][q * VW], &a[q], sizeof(vf));
      }
      int64_t rdone = 0;
#if defined(__AVX512F__)
      if (mj == JT) {  /* 16 rows x 16 outputs at a time, transposed in registers */
        const __m512 bv = bias ? _mm512_loadu_ps(bias + j0) : _mm512_setzero_ps();
        for (; rdone + 16 <= m; rdone += 16) {
          __m512 t[16];
          UNROLL for (int k = 0; k < 16; k++) t[k] = _mm512_loadu_ps(&acc[k][rdone]);
          tr16(t);
          UNROLL for (int k = 0; k < 16; k++)
            _mm512_storeu_ps(y + (r0 + rdone + k) * o + j0, _mm512_add_ps(t[k], bv));
        }
      }
#elif defined(__AVX__)
      if (mj == JT) {  /* 8 rows x 16 outputs at a time, transposed in registers: each row's
                          64-byte line is written whole, at once (rows are o floats apart, often
                          a power of two: half-line writes in turn thrashed L1's few sets) */
        const __m256 b0 = bias ? _mm256_loadu_ps(bias + j0) : _mm256_setzero_ps();
        const __m256 b1 = bias ? _mm256_loadu_ps(bias + j0 + 8) : _mm256_setzero_ps();
        for (int64_t r8 = 0; r8 + 8 <= m; r8 += 8) {
          __m256 t[8], u[8];
          UNROLL for (int k = 0; k < 8; k++) t[k] = _mm256_loadu_ps(&acc[k][r8]);
          UNROLL for (int k = 0; k < 8; k++) u[k] = _mm256_loadu_ps(&acc[8 + k][r8]);
          tr8(t);
          tr8(u);
          UNROLL for (int k = 0; k < 8; k++) {
            float* yr = y + (r0 + r8 + k) * o + j0;
            _mm256_storeu_ps(yr, _mm256_add_ps(t[k], b0));
            _mm256_storeu_ps(yr + 8, _mm256_add_ps(u[k], b1));
          }
        }
        rdone = m - m % 8;
      }
#endif
      for (int64_t r = rdone; r < m; r++) {
        float* yr = y + (r0 + r) * o + j0;
        for (int64_t jj = 0; jj < mj; jj++) yr[jj] = acc[jj][r] + (bias ? bias[j0 + jj] : 0.0f);
      }
    }
    free(xt);
#ifdef TRIPLES
    free(Vraw);
#endif
  }
  return fail;
}

/* y[n, o] = bias + sum over nonzero x[n, i] of x[n, i] * W[:, i], W as CSC by input
   (colptr[f+1], rows = output indices, vals): event-driven, one row per iteration. */
void sl_events_f32(const float* x, int64_t n, int64_t f, int64_t o, const int64_t* colptr,
                   const int32_t* rows, const float* vals, const float* bias, float* y) {
  const double work = (double)n * (double)f;
  #pragma omp parallel for schedule(static) if (work > 2e5)
  for (int64_t r = 0; r < n; r++) {
    float* yr = y + r * o;
    if (bias) memcpy(yr, bias, sizeof(float) * (size_t)o);
    else memset(yr, 0, sizeof(float) * (size_t)o);
    const float* xr = x + r * f;
    for (int64_t i = 0; i < f; i++) {
      const float v = xr[i];
      if (v == 0.0f) continue;
      const int64_t k0 = colptr[i], k1 = colptr[i + 1];
      if (v == 1.0f) {
        for (int64_t k = k0; k < k1; k++) yr[rows[k]] += vals[k];
      } else {
        for (int64_t k = k0; k < k1; k++) yr[rows[k]] += v * vals[k];
      }
    }
  }
}

/* Fraction of nonzero entries in up to `sample` evenly spaced rows of x[n, f]. */
double sl_activity_f32(const float* x, int64_t n, int64_t f, int64_t sample) {
  if (n <= 0 || f <= 0) return 0.0;
  const int64_t rows = n < sample ? n : sample;
  int64_t nz = 0;
  for (int64_t s = 0; s < rows; s++) {
    const float* xr = x + (s * n / rows) * f;
    for (int64_t i = 0; i < f; i++) nz += xr[i] != 0.0f;
  }
  return (double)nz / (double)(rows * f);
}

/* 1 if the spike ("triples") path was compiled in (AVX2), else 0. */
int sl_spike_path(void) {
#ifdef TRIPLES
  return 1;
#else
  return 0;
#endif
}

int sl_omp_threads(void) {
#ifdef _OPENMP
  extern int omp_get_max_threads(void);
  return omp_get_max_threads();
#else
  return 0;
#endif
}
"""


def _declare(lib: ctypes.CDLL) -> None:
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.sl_rows_f32.argtypes = [p, i64, i64, i64, p, p, p, p, p, p, p, p]
    lib.sl_rows_f32.restype = ctypes.c_int
    lib.sl_events_f32.argtypes = [p, i64, i64, i64, p, p, p, p, p]
    lib.sl_events_f32.restype = None
    lib.sl_activity_f32.argtypes = [p, i64, i64, i64]
    lib.sl_activity_f32.restype = ctypes.c_double
    lib.sl_omp_threads.restype = ctypes.c_int
    lib.sl_spike_path.restype = ctypes.c_int


def csr_by_output(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rowptr int64 [out+1], cols int32 [nnz], vals float32 [nnz]) of the nonzeros of
    ``weight [out, in]``, row by row (the layout of ``rows``)."""
    w = weight.detach().to("cpu", torch.float32)
    nz = w != 0
    counts = nz.sum(1)
    rowptr = torch.zeros(w.shape[0] + 1, dtype=torch.int64)
    rowptr[1:] = torch.cumsum(counts, 0)
    idx = nz.nonzero()  # row-major order
    return rowptr, idx[:, 1].to(torch.int32).contiguous(), w[nz].contiguous()


def triples_by_output(rowptr: torch.Tensor, cols: torch.Tensor,
                      vals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The spike path's weights (see ``rows``): each output's nonzeros in groups of three.

    From the CSR of ``csr_by_output`` (``rowptr [out+1]``, ``cols``, ``vals [nnz]``) returns
    ``gptr`` int64 ``[out+1]`` (output j owns groups ``gptr[j] .. gptr[j+1]-1``), ``gcols`` int32
    ``[3·G]`` (the group's three inputs) and ``gtab`` float32 ``[8·G]`` (``gtab[8g + s]`` = the
    sum of the group's weights b ∈ {0, 1, 2} with bit b of s set, added in the order b = 0, 1,
    2). A row whose nonzero count is not a multiple of 3 is padded with weight 0 on input 0.
    """
    counts = rowptr[1:] - rowptr[:-1]
    groups = (counts + 2) // 3
    gptr = torch.zeros_like(rowptr)
    gptr[1:] = torch.cumsum(groups, 0)
    n_groups = int(gptr[-1])
    row = torch.repeat_interleave(torch.arange(len(counts)), counts)
    slot = 3 * gptr[row] + torch.arange(len(cols)) - rowptr[row]  # position in the padded list
    gcols = torch.zeros(3 * n_groups, dtype=torch.int32)
    gcols[slot] = cols
    w = torch.zeros(3 * n_groups, dtype=torch.float32)
    w[slot] = vals
    w = w.view(n_groups, 3)
    tab = torch.zeros(n_groups, 8, dtype=torch.float32)
    for s in range(1, 8):
        total = torch.zeros(n_groups, dtype=torch.float32)
        for b in range(3):
            if s >> b & 1:
                total = total + w[:, b]
        tab[:, s] = total
    return gptr, gcols, tab.reshape(-1).contiguous()


@torch.no_grad()
def _self_test() -> None:
    g = torch.Generator().manual_seed(0)
    # (rows, inputs, outputs, activity, analog rows): partial blocks, inputs not a multiple of
    # 8, an all-silent input, analog blocks before spike blocks, and spikes only
    for n, f, o, act, analog in ((130, 77, 37, 0.2, True), (3, 5, 70, 1.0, True),
                                 (64, 40, 16, 0.0, False), (200, 45, 40, 0.3, False),
                                 (128, 64, 20, 0.15, False)):
        w = torch.randn(o, f, generator=g) * (torch.rand(o, f, generator=g) < 0.3)
        b = torch.randn(o, generator=g)
        x = (torch.rand(n, f, generator=g) < act).float()
        if analog:
            x[: n // 2] *= torch.rand(n // 2, f, generator=g) * 3
        ref = torch.nn.functional.linear(x, w, b)
        csr = csr_by_output(w)
        for out in (rows_linear(x, *csr, b, o), rows_linear(x, *csr, b, o, triples_by_output(*csr)),
                    events_linear(x, *csr_by_output(w.t()), b, o)):
            if not torch.allclose(out, ref, rtol=1e-5, atol=1e-5):
                raise RuntimeError("a native sparse-linear kernel differs from "
                                   "torch.nn.functional.linear")


KERNEL = native_build.NativeKernel(
    "sparse-inference",
    lambda: native_build.build("sparse_linear", _SRC, extra_flags=["-ffp-contract=fast"]),
    _declare, _self_test, lambda lib: lib.sl_omp_threads(), "PyTorch's CSR matmul")


library, available, status = KERNEL.library, KERNEL.available, KERNEL.status


def _ptr(t: Optional[torch.Tensor]):
    return None if t is None else t.data_ptr()


def rows_linear(x: torch.Tensor, rowptr, cols, vals, bias, out_features: int,
                triples: Optional[tuple] = None) -> torch.Tensor:
    """``rows`` kernel: x ``[N, in]`` float32 contiguous -> ``[N, out]``. ``triples``: the
    output of ``triples_by_output`` for the spike path (without it, every block takes the
    float path)."""
    n, f = x.shape
    y = torch.empty(n, out_features, dtype=torch.float32)
    if n == 0:
        return y
    gptr, gcols, gtab = (None, None, None) if triples is None else triples
    if KERNEL.lib.sl_rows_f32(x.data_ptr(), n, f, out_features, rowptr.data_ptr(),
                              cols.data_ptr(), vals.data_ptr(), _ptr(gptr), _ptr(gcols),
                              _ptr(gtab), _ptr(bias), y.data_ptr()):
        raise MemoryError("sparse kernel: out of memory for its scratch buffer")
    return y


def events_linear(x: torch.Tensor, colptr, rows, vals, bias, out_features: int) -> torch.Tensor:
    """``events`` kernel: x ``[N, in]`` float32 contiguous -> ``[N, out]``."""
    n, f = x.shape
    y = torch.empty(n, out_features, dtype=torch.float32)
    if n == 0:
        return y
    KERNEL.lib.sl_events_f32(x.data_ptr(), n, f, out_features, colptr.data_ptr(),
                             rows.data_ptr(), vals.data_ptr(), _ptr(bias), y.data_ptr())
    return y


def spike_path() -> bool:
    """Whether the loaded kernel has the spike ("triples") path of ``rows`` (AVX2 CPUs)."""
    lib = KERNEL.library()
    return lib is not None and bool(lib.sl_spike_path())


def activity(x: torch.Tensor, sample: int = 32) -> float:
    """Estimated fraction of nonzero entries of x ``[N, in]`` (from up to ``sample`` rows)."""
    return float(KERNEL.lib.sl_activity_f32(x.data_ptr(), x.shape[0], x.shape[1], sample))
