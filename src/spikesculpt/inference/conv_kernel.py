"""Native CPU kernels for sparse 2-D convolutions: ``y = conv2d(x, W) + b`` with W sparse.

Scope: stride 1, dilation 1, one group, zero padding, float32, CPU — the 3x3 / 'same'
convolutions of the spiking VGGs, of the Spikformer's tokenizer and of the ResNets' non-strided
layers. Two kernels, both skipping every zero weight (``SparseConv2d`` picks per layer):

``direct`` (vectorised, weights by output channel; no im2col)
    Each image is zero-padded once into a scratch ``xp [C, Hp, Wp]`` that stays in cache while
    its outputs are computed. An output pixel (oh, ow) of a stride-1 convolution reads
    ``xp[ci, oh + kh, ow + kw]``, so with ``offs = ci·Hp·Wp + kh·Wp + kw`` every nonzero weight
    (co, ci, kh, kw) adds one shifted copy of the input to a tile of output rows ::

        out[co, oh, ow] += W[co, ci, kh, kw] · xp_flat[offs + oh·Wp + ow]

    (Park et al. 2017, "Faster CNNs with direct sparse convolutions"). A tile is as many
    output rows as fit in the vector accumulators (12 with AVX2, 24 with AVX-512; a 32-wide
    row is 4 AVX2 vectors, so 3 rows), held in registers while the output channel's nonzeros
    run: per nonzero one broadcast and, per accumulator, one load and one fused multiply-add —
    the per-element speed of a dense GEMM — and the tile is stored once, directly into the
    output (the kernel is specialised for each row width in vectors). Rows wider than the
    accumulators are split into column chunks. Work ∝ density · dense MACs, whatever the input
    activity.
    **Spike input on AVX2** ("triples", as for the linear layers in ``cpu_kernel.py``; every
    value 0 or 1, checked while packing, else the float path above runs): each output
    channel's nonzeros are grouped in threes with a table of their 8 subset sums; a block of up
    to 8 images is packed into one padded stack of 32-bit words, bit 3q of ``V[ci, y, x]`` =
    image q's spike, so ``V[o1 + p] + 2 V[o2 + p] + 4 V[o3 + p]`` holds every image's 3-bit
    subset index for 8 output positions p, and one in-register table lookup (``vpermps``) per
    image adds three weights to 8 positions. Positions are flattened over the padded width
    (``p = oh·Wp + ow``; the extra columns are computed and dropped), so each load is one
    contiguous vector. ~3 vector operations per three nonzeros, 8 positions and one image,
    against ~2 per nonzero for the float path; measured 1.4–3x faster than it on 6–15% spikes
    (2 threads, AMD EPYC Zen 3). Sums are grouped by three: the same values to float32 rounding.
``events`` (event-driven, weights by input channel)
    For each nonzero input x[ci, iy, ix] (a spike) and each nonzero weight (co, kh, kw) of input
    channel ci: ``out[co, iy + ph - kh, ix + pw - kw] += x · W`` into a margin-padded buffer
    (no bounds tests), then cropped. Work ∝ activity · density · dense MACs (the effective
    SynOps), but scalar scatter-adds; it wins when few inputs spike. Needs ``padding ≤ k - 1``.

Both are OpenMP-parallel (over samples × pixel tiles, or over samples) and share PyTorch's
thread pool. Sums run in another order than PyTorch's convolution: results agree to float32
rounding (checked at load by a self-test against ``torch.nn.functional.conv2d``). Compiled on
first use by ``core/native_build.py``; if that fails, ``available()`` is False, one warning is
issued and ``SparseConv2d`` keeps PyTorch's dense convolution (same results).
``SPIKESCULPT_NATIVE=0`` disables it.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import torch
import torch.nn.functional as F

from spikesculpt.core import native_build
from spikesculpt.inference import cpu_kernel

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#define VW 16
#define NV 24
#elif defined(__AVX__)
#define VW 8
#define NV 12
#else
#define VW 4
#define NV 8
#endif
typedef float vf __attribute__((vector_size(VW * 4)));
#ifndef PD
#define PD 4           /* prefetch distance, in nonzeros */
#endif
/* The accumulators must live in registers: unroll their loops fully. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define UNROLL _Pragma("GCC unroll 32")
#else
#define UNROLL
#endif

static inline vf ldv(const float* p) { vf v; memcpy(&v, p, sizeof v); return v; }


/* Zero-pad image x[c, h, w] by (ph, pw) into xp[c, hp, wp], planes [p0, p1). */
static void pad_image(const float* x, float* xp, int64_t p0, int64_t p1, int64_t h, int64_t w,
                      int64_t ph, int64_t pw) {
  const int64_t wp = w + 2 * pw, plane = (h + 2 * ph) * wp;
  for (int64_t pl = p0; pl < p1; pl++) {
    float* dst = xp + pl * plane;
    const float* src = x + pl * h * w;
    memset(dst, 0, sizeof(float) * (size_t)(ph * wp));
    for (int64_t r = 0; r < h; r++) {
      float* d = dst + (ph + r) * wp;
      memset(d, 0, sizeof(float) * (size_t)pw);
      memcpy(d + pw, src + r * w, sizeof(float) * (size_t)w);
      memset(d + pw + w, 0, sizeof(float) * (size_t)pw);
    }
    memset(dst + (ph + h) * wp, 0, sizeof(float) * (size_t)(ph * wp));
  }
}

/* Output rows [oh0, oh0 + nr) x columns [col0, col0 + wc) of output channels [co0, co1) of one
   padded image xp: y_s[co, oh, ow] = b[co] + sum_k vals[k] * xp[offs[k] + oh*wp + ow]. The tile
   is nr rows x vpr vectors (vpr*VW >= wc, nr*vpr <= NV), all in registers; inlined with a
   constant vpr, so the loops over the accumulators unroll. */
static inline __attribute__((always_inline)) void direct_rows(
    const float* xp, int64_t oh0, int64_t nr, int64_t col0, int64_t wc, const int vpr,
    int64_t wp, int64_t wo, int64_t co0, int64_t co1, const int64_t* ptr, const int32_t* offs,
    const float* vals, const float* bias, float* ys, int64_t plane_out) {
  const float* xs = xp + oh0 * wp + col0;
  const int64_t kend = ptr[co1];  /* prefetch across output channels too */
  for (int64_t co = co0; co < co1; co++) {
    vf a[NV];
    UNROLL for (int v = 0; v < NV; v++) a[v] = (vf){0};
    const int64_t k1 = ptr[co + 1];
    for (int64_t k = ptr[co]; k < k1; k++) {
      const float* xk = xs + offs[k];
      if (k + PD < kend) {  /* a later nonzero's rows: hide the cache misses */
        const float* pf = xs + offs[k + PD];
        for (int64_t r = 0; r < nr; r++)
          UNROLL for (int c = 0; c < vpr * VW; c += 16) __builtin_prefetch(pf + r * wp + c);
      }
      const vf wv = (vf){0} + vals[k];  /* broadcast */
      UNROLL for (int r = 0; r < NV / vpr; r++) {
        if (r < nr) {
          UNROLL for (int c = 0; c < vpr; c++)
            a[r * vpr + c] += wv * ldv(xk + r * wp + c * VW);
        }
      }
    }
    const vf bv = (vf){0} + (bias ? bias[co] : 0.0f);
    float* yc = ys + co * plane_out + oh0 * wo + col0;
    UNROLL for (int r = 0; r < NV / vpr; r++) {
      if (r < nr) {
        UNROLL for (int c = 0; c < vpr; c++) {
          const vf out = a[r * vpr + c] + bv;
          float* dst = yc + r * wo + c * VW;
          if ((c + 1) * VW <= wc) memcpy(dst, &out, sizeof(vf));
          else memcpy(dst, &out, sizeof(float) * (size_t)(wc - c * VW));  /* ragged edge */
        }
      }
    }
  }
}

typedef void (*rows_fn)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                        int64_t, int64_t, const int64_t*, const int32_t*, const float*,
                        const float*, float*, int64_t);
#define ROWS_V(V)                                                                             \
  static void rows_v##V(const float* xp, int64_t oh0, int64_t nr, int64_t col0, int64_t wc,   \
                        int64_t wp, int64_t wo, int64_t co0, int64_t co1, const int64_t* ptr, \
                        const int32_t* offs, const float* vals, const float* bias, float* ys, \
                        int64_t plane_out) {                                                  \
    direct_rows(xp, oh0, nr, col0, wc, V, wp, wo, co0, co1, ptr, offs, vals, bias, ys,        \
                plane_out);                                                                   \
  }
ROWS_V(1) ROWS_V(2) ROWS_V(3) ROWS_V(4) ROWS_V(5) ROWS_V(6) ROWS_V(7) ROWS_V(8)
#if NV > 8
ROWS_V(9) ROWS_V(10) ROWS_V(11) ROWS_V(12)
#endif
#if NV > 12
ROWS_V(13) ROWS_V(14) ROWS_V(15) ROWS_V(16) ROWS_V(17) ROWS_V(18) ROWS_V(19) ROWS_V(20)
ROWS_V(21) ROWS_V(22) ROWS_V(23) ROWS_V(24)
#endif
static const rows_fn ROWS[NV + 1] = {0, rows_v1, rows_v2, rows_v3, rows_v4, rows_v5, rows_v6,
                                     rows_v7, rows_v8
#if NV > 8
                                     , rows_v9, rows_v10, rows_v11, rows_v12
#endif
#if NV > 12
                                     , rows_v13, rows_v14, rows_v15, rows_v16, rows_v17,
                                     rows_v18, rows_v19, rows_v20, rows_v21, rows_v22, rows_v23,
                                     rows_v24
#endif
};

/* One work item of an image: row group g of column chunk cc (see sc_direct_f32). */
static void direct_item(const float* xp, int64_t item, int64_t ngroups, int64_t rows,
                        int64_t ho, int64_t wo, int64_t wp, int64_t co0, int64_t co1,
                        const int64_t* ptr, const int32_t* offs, const float* vals,
                        const float* bias, float* ys) {
  const int64_t cc = item / ngroups, g = item % ngroups;
  const int64_t col0 = cc * NV * VW;
  const int64_t wc = wo - col0 < NV * VW ? wo - col0 : NV * VW;
  const int vpr = (int)((wc + VW - 1) / VW);  /* <= that of the first chunk: rows fit */
  const int64_t oh0 = g * rows, nr = ho - oh0 < rows ? ho - oh0 : rows;
  if (nr > 0)
    ROWS[vpr](xp, oh0, nr, col0, wc, wp, wo, co0, co1, ptr, offs, vals, bias, ys, ho * wo);
}

/* Direct sparse convolution, stride 1. x: [n, c, h, w]. Output channel co has nonzeros k in
   ptr[co]..ptr[co+1], with offs[k] = ci*hp*wp + kh*wp + kw (hp = h + 2ph, wp = w + 2pw) and
   vals[k]. y: [n, o, ho, wo]; bias [o] or NULL. Each image is zero-padded into a scratch
   buffer that stays in cache while all its tiles are computed: with at least 2 images per
   thread, threads take whole images; otherwise they share each image's tiles x channels.
   Returns 0, or 1 if a scratch buffer could not be allocated. */
int sc_direct_f32(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ph,
                  int64_t pw, int64_t o, int64_t ho, int64_t wo, const int64_t* ptr,
                  const int32_t* offs, const float* vals, const float* bias, float* y) {
  const int64_t hp = h + 2 * ph, wp = w + 2 * pw;
  const int64_t plane = hp * wp;
  /* work items per image: column chunks of NV vectors x groups of rows that fill NV vectors */
  const int64_t nchunks = (wo + NV * VW - 1) / (NV * VW);
  const int64_t vpr0 = nchunks > 1 ? NV : (wo + VW - 1) / VW, rows0 = NV / vpr0;
  const int64_t ngroups = (ho + rows0 - 1) / rows0, nt = nchunks * ngroups;
  const size_t scratch = sizeof(float) * (size_t)(c * plane + NV * VW + 2 * wp + 64);
  const double work = (double)n * (double)(ptr[o] + o) * (double)(ho * wo);
  int threads = 1;
#ifdef _OPENMP
  extern int omp_get_max_threads(void);
  if (work > 2e5) threads = omp_get_max_threads();
#endif
  int fail = 0;
  if (n >= 2 * threads) {
    #pragma omp parallel num_threads(threads) reduction(|:fail)
    {
      float* xp = (float*)calloc(1, scratch);  /* the tail stays zero: the last tile's slack */
      if (!xp) fail = 1;
      #pragma omp for schedule(dynamic, 1)
      for (int64_t s = 0; s < n; s++) {
        if (!xp) continue;
        pad_image(x + s * c * h * w, xp, 0, c, h, w, ph, pw);
        for (int64_t t = 0; t < nt; t++)
          direct_item(xp, t, ngroups, rows0, ho, wo, wp, 0, o, ptr, offs, vals, bias,
                      y + s * o * ho * wo);
      }
      free(xp);
    }
    return fail;
  }
  float* xp = (float*)calloc(1, scratch);
  if (!xp) return 1;
  const int64_t cb = 8, ncb = (o + cb - 1) / cb;  /* output channels per work item */
  for (int64_t s = 0; s < n; s++) {
    #pragma omp parallel num_threads(threads)
    {
      #pragma omp for schedule(static)
      for (int64_t pl = 0; pl < c; pl++) pad_image(x + s * c * h * w, xp, pl, pl + 1, h, w, ph, pw);
      #pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < nt * ncb; t++) {
        const int64_t co0 = (t % ncb) * cb, co1 = co0 + cb < o ? co0 + cb : o;
        direct_item(xp, t / ncb, ngroups, rows0, ho, wo, wp, co0, co1, ptr, offs, vals, bias,
                    y + s * o * ho * wo);
      }
    }
  }
  free(xp);
  return 0;
}

/* Event-driven sparse convolution, stride 1, padding ph <= kh-1, pw <= kw-1. Input channel ci
   has nonzeros k in cptr[ci]..cptr[ci+1] with delta[k] = co*pb + (kh-1-a)*wb + (kw-1-b) for the
   weight (co, ci, a, b) and cvals[k]; the buffer per output channel is (h+kh-1) x (w+kw-1) = pb.
   Returns 0, or 1 if a buffer could not be allocated. */
int sc_events_f32(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o,
                  int64_t kh, int64_t kw, int64_t ph, int64_t pw, int64_t ho, int64_t wo,
                  const int64_t* cptr, const int32_t* delta, const float* cvals,
                  const float* bias, float* y) {
  const int64_t hb = h + kh - 1, wb = w + kw - 1, pb = hb * wb;
  const double work = (double)n * (double)(c * h * w + o * pb);
  int fail = 0;
  #pragma omp parallel if (work > 2e5 && n > 1) reduction(|:fail)
  {
    float* buf = (float*)malloc(sizeof(float) * (size_t)(o * pb));
    if (!buf) fail = 1;
    #pragma omp for schedule(static)
    for (int64_t s = 0; s < n; s++) {
      if (!buf) continue;
      memset(buf, 0, sizeof(float) * (size_t)(o * pb));
      const float* xs = x + s * c * h * w;
      for (int64_t ci = 0; ci < c; ci++) {
        const int64_t k0 = cptr[ci], k1 = cptr[ci + 1];
        if (k0 == k1) continue;
        for (int64_t iy = 0; iy < h; iy++) {
          const float* xr = xs + (ci * h + iy) * w;
          for (int64_t ix = 0; ix < w; ix++) {
            const float v = xr[ix];
            if (v == 0.0f) continue;
            float* bb = buf + iy * wb + ix;
            if (v == 1.0f) {
              for (int64_t k = k0; k < k1; k++) bb[delta[k]] += cvals[k];
            } else {
              for (int64_t k = k0; k < k1; k++) bb[delta[k]] += v * cvals[k];
            }
          }
        }
      }
      for (int64_t co = 0; co < o; co++) {
        const float b = bias ? bias[co] : 0.0f;
        for (int64_t oy = 0; oy < ho; oy++) {
          const float* row = buf + co * pb + (oy + kh - 1 - ph) * wb + (kw - 1 - pw);
          float* yr = y + ((s * o + co) * ho + oy) * wo;
          for (int64_t ox = 0; ox < wo; ox++) yr[ox] = row[ox] + b;
        }
      }
    }
    free(buf);
  }
  return fail;
}

#if defined(__AVX2__)
#include <immintrin.h>
/* Spike input on AVX2: "triples" (as for the linear layers, inference/cpu_kernel.py). A block
   of up to 8 images is packed into one padded plane stack of 32-bit words, bit 3q of
   V[ci, y, x] = x[s0 + q, ci, y - ph, x - pw] (0 / 1), so that for the three nonzeros
   (offsets o1, o2, o3) of a triple, V[o1 + p] + 2 V[o2 + p] + 4 V[o3 + p] holds each image's
   3-bit subset index of the triple's table at bits 3q..3q+2, for 8 output positions p at once.
   Positions are flattened over the padded width: p = oh * wp + ow (the wp - wo extra columns
   are computed and dropped), so every load is one contiguous 8-word vector. */
#define SPIKE_CONV 1
""" + cpu_kernel.TRIPLE_STEP_C + r"""#ifndef SPD
#define SPD 32  /* prefetch distance, in words */
#endif

/* Pack images s0 .. s0+nb-1 (nb <= 8) of x[n, c, h, w] into the interior of V[c][hp][wp]
   (the borders stay as they are: zero). Returns 1 if every value is 0 or 1, else 0. */
static int pack_images(const float* x, int64_t s0, int64_t nb, int64_t c, int64_t h,
                       int64_t w, int64_t ph, int64_t pw, uint32_t* V) {
  const int64_t wp = w + 2 * pw, plane = (h + 2 * ph) * wp;
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  __m256 bad = zero;
  int sbad = 0;
  for (int64_t ci = 0; ci < c; ci++)
    for (int64_t r = 0; r < h; r++) {
      uint32_t* dst = V + ci * plane + (ph + r) * wp + pw;
      const float* src = x + ((s0 * c + ci) * h + r) * w;
      const int64_t img = c * h * w;  /* floats from one image to the next */
      int64_t i = 0;
      for (; i + 8 <= w; i += 8) {
        __m256i acc = _mm256_setzero_si256();
        for (int64_t q = 0; q < nb; q++) {
          const __m256 v = _mm256_loadu_ps(src + q * img + i);
          const __m256 nz = _mm256_cmp_ps(v, zero, _CMP_NEQ_UQ);
          bad = _mm256_or_ps(bad, _mm256_xor_ps(nz, _mm256_cmp_ps(v, one, _CMP_EQ_OQ)));
          acc = _mm256_or_si256(acc, _mm256_and_si256(_mm256_castps_si256(nz),
                                                      _mm256_set1_epi32(1 << (3 * q))));
        }
        _mm256_storeu_si256((__m256i*)(dst + i), acc);
      }
      for (; i < w; i++) {
        uint32_t a = 0;
        for (int64_t q = 0; q < nb; q++) {
          const float v = src[q * img + i];
          if (v == 0.0f) continue;
          if (v != 1.0f) sbad = 1;
          a |= 1u << (3 * q);
        }
        dst[i] = a;
      }
    }
  return !sbad && !_mm256_movemask_ps(bad);
}

/* Output channels [co0, co1) of the block: y[s0 + q, co] = b[co] + the triples' table entries
   (S: a scratch of 8 planes of p8 floats). */
static inline __attribute__((always_inline)) void spike_channels_q(
    const uint32_t* V, int64_t s0, int64_t nb, int64_t co0, int64_t co1, int64_t o, int64_t ho,
    int64_t wo, int64_t wp, const int64_t* gptr, const int32_t* gcols, const float* gtab,
    const float* bias, float* S, int64_t p8, float* y, const int nq) {
  const int64_t P = ho * wp;
  for (int64_t co = co0; co < co1; co++) {
    const int64_t g0 = gptr[co], g1 = gptr[co + 1];
    for (int64_t p = 0; p < P; p += 8) {
      __m256 a[8];
      for (int q = 0; q < 8; q++) a[q] = _mm256_setzero_ps();
      for (int64_t g = g0; g < g1; g++) {
        const int32_t* cc = gcols + 3 * g;
        UNROLL for (int e = 0; e < 3; e++) __builtin_prefetch(V + cc[e] + p + SPD);
        triple_step(a, V + cc[0] + p, V + cc[1] + p, V + cc[2] + p, gtab + 8 * g, nq);
      }
      UNROLL for (int q = 0; q < 8; q++)
        if (q < nq) _mm256_storeu_ps(S + q * p8 + p, a[q]);
    }
    const float b = bias ? bias[co] : 0.0f;
    for (int64_t q = 0; q < nb; q++) {
      float* yc = y + ((s0 + q) * o + co) * ho * wo;
      const float* sq = S + q * p8;
      for (int64_t r = 0; r < ho; r++)
        for (int64_t i = 0; i < wo; i++) yc[r * wo + i] = sq[r * wp + i] + b;
    }
  }
}

/* spike_channels_q for blocks of up to 4 images (a batch of 1 at T <= 4: half the lookups) or
   up to 8. */
static void spike_channels(const uint32_t* V, int64_t s0, int64_t nb, int64_t co0, int64_t co1,
                           int64_t o, int64_t ho, int64_t wo, int64_t wp, const int64_t* gptr,
                           const int32_t* gcols, const float* gtab, const float* bias,
                           float* S, int64_t p8, float* y) {
  if (nb <= 4)
    spike_channels_q(V, s0, nb, co0, co1, o, ho, wo, wp, gptr, gcols, gtab, bias, S, p8, y, 4);
  else
    spike_channels_q(V, s0, nb, co0, co1, o, ho, wo, wp, gptr, gcols, gtab, bias, S, p8, y, 8);
}

/* Sparse convolution of spike input, stride 1 (see SPIKE_CONV). Output channel co has
   triples gptr[co] .. gptr[co+1]-1 with offsets gcols[3g .. 3g+2] (ci*hp*wp + kh*wp + kw) and
   table gtab[8g .. 8g+7]. Returns 0; 1 if a buffer could not be allocated; 2 if some input
   is not 0 / 1 (then nothing useful was written: use sc_direct_f32). */
int sc_spikes_f32(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ph,
                  int64_t pw, int64_t o, int64_t ho, int64_t wo, const int64_t* gptr,
                  const int32_t* gcols, const float* gtab, const float* bias, float* y) {
  const int64_t hp = h + 2 * ph, wp = w + 2 * pw, plane = hp * wp;
  const int64_t p8 = (ho * wp + 7) / 8 * 8;
  /* reads reach V[max offset + p8 + 7] <= c*plane + kw + 8: slack of wp + 16 words */
  const size_t vbytes = sizeof(uint32_t) * (size_t)(c * plane + wp + 16);
  const size_t sbytes = sizeof(float) * (size_t)(8 * p8);
  const int64_t nblk = (n + 7) / 8;
  const double work = (double)n * (double)(gptr[o] * 3 + o) * (double)(ho * wo);
  int threads = 1;
#ifdef _OPENMP
  extern int omp_get_max_threads(void);
  if (work > 2e5) threads = omp_get_max_threads();
#endif
  int fail = 0, notbin = 0;
  if (nblk >= 2 * threads) {  /* threads take whole blocks of 8 images */
    #pragma omp parallel num_threads(threads) reduction(|:fail)
    {
      uint32_t* V = (uint32_t*)calloc(1, vbytes);
      float* S = (float*)malloc(sbytes);
      if (!V || !S) fail = 1;
      #pragma omp for schedule(dynamic, 1)
      for (int64_t blk = 0; blk < nblk; blk++) {
        if (fail || notbin) continue;
        const int64_t s0 = blk * 8, nb = n - s0 < 8 ? n - s0 : 8;
        if (!pack_images(x, s0, nb, c, h, w, ph, pw, V)) {
          #pragma omp atomic write
          notbin = 1;
          continue;
        }
        spike_channels(V, s0, nb, 0, o, o, ho, wo, wp, gptr, gcols, gtab, bias, S, p8, y);
      }
      free(V);
      free(S);
    }
    return fail ? 1 : notbin ? 2 : 0;
  }
  uint32_t* V = (uint32_t*)calloc(1, vbytes);
  if (!V) return 1;
  for (int64_t blk = 0; blk < nblk && !fail && !notbin; blk++) {
    const int64_t s0 = blk * 8, nb = n - s0 < 8 ? n - s0 : 8;
    if (!pack_images(x, s0, nb, c, h, w, ph, pw, V)) { notbin = 1; break; }
    #pragma omp parallel num_threads(threads) reduction(|:fail)
    {
      float* S = (float*)malloc(sbytes);
      if (!S) fail = 1;
      #pragma omp for schedule(dynamic, 1)
      for (int64_t co = 0; co < o; co++)
        if (S) spike_channels(V, s0, nb, co, co + 1, o, ho, wo, wp, gptr, gcols, gtab, bias, S,
                              p8, y);
      free(S);
    }
  }
  free(V);
  return fail ? 1 : notbin ? 2 : 0;
}
#endif

#ifndef SPIKE_CONV
/* No spike path on this CPU: always "not done" (the float path runs). */
int sc_spikes_f32(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ph,
                  int64_t pw, int64_t o, int64_t ho, int64_t wo, const int64_t* gptr,
                  const int32_t* gcols, const float* gtab, const float* bias, float* y) {
  (void)x; (void)n; (void)c; (void)h; (void)w; (void)ph; (void)pw; (void)o; (void)ho;
  (void)wo; (void)gptr; (void)gcols; (void)gtab; (void)bias; (void)y;
  return 2;
}
#endif

int sc_spike_path(void) {
#ifdef SPIKE_CONV
  return 1;
#else
  return 0;
#endif
}

/* PyTorch's max-pool step: a later value replaces the running maximum if it is greater or NaN
   (so NaN propagates, and of equal values - signed zeros too - the first is kept). */
static inline float max_step(float m, float v) { return (v > m || v != v) ? v : m; }

/* A pooling window's valid entries, in PyTorch's order (row by row): their mean, summed left
   to right and divided by their count (avg_pool2d), or their maximum from -inf by max_step
   (max_pool2d). */
static inline __attribute__((always_inline)) float window(const int is_max, const int n, float a,
                                                          float b, float c, float d) {
  if (is_max) {
    float m = max_step(-__builtin_inff(), a);
    if (n > 1) m = max_step(m, b);
    if (n > 2) m = max_step(max_step(m, c), d);
    return m;
  }
  return n == 4 ? (((a + b) + c) + d) / 4.0f : n == 2 ? (a + b) / 2.0f : a;
}

/* 2x2 / stride-2 pooling of one plane x[h, w] -> y[ho, wo], ceil_mode's partial last windows
   included (padding 0): PyTorch's result bit for bit. */
static inline __attribute__((always_inline)) void pool2_plane(const float* xp, float* yp,
    int64_t h, int64_t w, int64_t ho, int64_t wo, const int is_max) {
  for (int64_t oy = 0; oy < ho; oy++) {
    const float* r0 = xp + 2 * oy * w;
    const int two_rows = 2 * oy + 1 < h;
    const float* r1 = r0 + w;
    const int64_t full = (w / 2 < wo ? w / 2 : wo);  /* windows with two columns */
    float* yr = yp + oy * wo;
    if (two_rows) {
      for (int64_t ox = 0; ox < full; ox++)
        yr[ox] = window(is_max, 4, r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
      for (int64_t ox = full; ox < wo; ox++)  /* one column: (top, bottom) */
        yr[ox] = window(is_max, 2, r0[2 * ox], r1[2 * ox], 0.0f, 0.0f);
    } else {
      for (int64_t ox = 0; ox < full; ox++)
        yr[ox] = window(is_max, 2, r0[2 * ox], r0[2 * ox + 1], 0.0f, 0.0f);
      for (int64_t ox = full; ox < wo; ox++) yr[ox] = window(is_max, 1, r0[2 * ox], 0, 0, 0);
    }
  }
}

/* Planes x[planes, h, w] -> y[planes, ho, wo]: average (avg_pool2d) and max (max_pool2d). The
   parallel loops are here, not in pool2_plane: OpenMP's outlined loop body would not see
   is_max as a constant. */
void sc_avgpool2_f32(const float* x, int64_t planes, int64_t h, int64_t w, int64_t ho,
                     int64_t wo, float* y) {
  #pragma omp parallel for schedule(static) if ((double)planes * (double)(h * w) > 2e5)
  for (int64_t p = 0; p < planes; p++) pool2_plane(x + p * h * w, y + p * ho * wo, h, w, ho, wo, 0);
}

void sc_maxpool2_f32(const float* x, int64_t planes, int64_t h, int64_t w, int64_t ho,
                     int64_t wo, float* y) {
  #pragma omp parallel for schedule(static) if ((double)planes * (double)(h * w) > 2e5)
  for (int64_t p = 0; p < planes; p++) pool2_plane(x + p * h * w, y + p * ho * wo, h, w, ho, wo, 1);
}

int sc_omp_threads(void) {
#ifdef _OPENMP
  extern int omp_get_max_threads(void);
  return omp_get_max_threads();
#else
  return 0;
#endif
}
"""


class ConvWeights:
    """The nonzeros of a conv weight ``[out, in, kh, kw]`` in the two kernels' layouts, for an
    input of ``h x w`` pixels (the offsets depend on it; ``for_size`` caches one per size).

    ``direct``: ``ptr`` int64 ``[out+1]``, ``offs`` int32, ``vals`` float32 by output channel.
    ``events``: ``cptr`` int64 ``[in+1]``, ``delta`` int32, ``cvals`` float32 by input channel.
    """

    def __init__(self, weight: torch.Tensor, padding: tuple[int, int]):
        w = weight.detach().to("cpu", torch.float32)
        self.out_channels, self.in_channels, self.kh, self.kw = w.shape
        self.ph, self.pw = padding
        nz = w != 0
        self.idx = nz.nonzero()  # (co, ci, a, b), row-major: grouped by output channel
        self.vals = w[nz].contiguous()
        self.ptr = torch.zeros(self.out_channels + 1, dtype=torch.int64)
        self.ptr[1:] = torch.cumsum(nz.flatten(1).sum(1), 0)
        by_in = self.idx[:, 1].argsort(stable=True)
        self.cidx, self.cvals = self.idx[by_in], self.vals[by_in].contiguous()
        self.cptr = torch.zeros(self.in_channels + 1, dtype=torch.int64)
        self.cptr[1:] = torch.cumsum(torch.bincount(self.idx[:, 1], minlength=self.in_channels), 0)
        self._sizes: dict = {}

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        return h + 2 * self.ph - self.kh + 1, w + 2 * self.pw - self.kw + 1

    def for_size(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(offs, delta)`` int32 for an ``h x w`` input."""
        if (h, w) not in self._sizes:
            hp, wp = h + 2 * self.ph, w + 2 * self.pw
            co, ci, a, b = self.idx.unbind(1)
            offs = (ci * hp * wp + a * wp + b).to(torch.int32).contiguous()
            hb, wb = h + self.kh - 1, w + self.kw - 1
            co, ci, a, b = self.cidx.unbind(1)
            delta = (co * hb * wb + (self.kh - 1 - a) * wb + (self.kw - 1 - b)).to(torch.int32)
            self._sizes[(h, w)] = (offs, delta.contiguous())
        return self._sizes[(h, w)]

    def triples_for_size(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The spike path's ``(gptr, gcols, gtab)`` (``cpu_kernel.triples_by_output`` over the
        ``direct`` offsets) for an ``h x w`` input."""
        key = ("triples", h, w)
        if key not in self._sizes:
            self._sizes[key] = cpu_kernel.triples_by_output(self.ptr, self.for_size(h, w)[0],
                                                            self.vals)
        return self._sizes[key]

    @property
    def events_ok(self) -> bool:
        return self.ph <= self.kh - 1 and self.pw <= self.kw - 1


def _declare(lib: ctypes.CDLL) -> None:
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.sc_direct_f32.argtypes = [p, *([i64] * 9), p, p, p, p, p]
    lib.sc_direct_f32.restype = ctypes.c_int
    lib.sc_events_f32.argtypes = [p, *([i64] * 11), p, p, p, p, p]
    lib.sc_events_f32.restype = ctypes.c_int
    lib.sc_avgpool2_f32.argtypes = [p, i64, i64, i64, i64, i64, p]
    lib.sc_avgpool2_f32.restype = None
    lib.sc_maxpool2_f32.argtypes = [p, i64, i64, i64, i64, i64, p]
    lib.sc_maxpool2_f32.restype = None
    lib.sc_omp_threads.restype = ctypes.c_int
    lib.sc_spikes_f32.argtypes = [p, *([i64] * 9), p, p, p, p, p]
    lib.sc_spikes_f32.restype = ctypes.c_int
    lib.sc_spike_path.restype = ctypes.c_int


@torch.no_grad()
def _self_test() -> None:
    g = torch.Generator().manual_seed(0)
    for n, c, o, h, w, k, pad, act in ((3, 5, 7, 9, 13, 3, 1, 0.2), (2, 3, 4, 6, 5, 5, 2, 1.0),
                                       (1, 4, 3, 7, 7, 3, 0, 0.3), (2, 2, 2, 4, 4, 1, 0, 0.5),
                                       (1, 2, 3, 3, 400, 3, 1, 0.4)):
        wt = torch.randn(o, c, k, k, generator=g) * (torch.rand(o, c, k, k, generator=g) < 0.3)
        b = torch.randn(o, generator=g)
        x = (torch.rand(n, c, h, w, generator=g) < act).float()
        x[0] *= torch.rand(c, h, w, generator=g) * 3  # an analog sample too
        cw = ConvWeights(wt, (pad, pad))
        spikes = (x != 0).float()  # the spike path runs on these, the float path on x
        for inp in (x, spikes):
            ref = F.conv2d(inp, wt, b, padding=pad)
            for fn in (direct_conv, events_conv):
                out = fn(inp, cw, b)
                if not torch.allclose(out, ref, rtol=1e-5, atol=1e-5):
                    raise RuntimeError(f"native sparse kernel {fn.__name__} differs from "
                                       f"torch.nn.functional.conv2d")
        for ceil in (True, False):
            if not torch.equal(avg_pool2(x, ceil), F.avg_pool2d(x, 2, 2, ceil_mode=ceil)):
                raise RuntimeError("native 2x2 average pooling differs from avg_pool2d")
            if not torch.equal(max_pool2(x, ceil), F.max_pool2d(x, 2, 2, ceil_mode=ceil)):
                raise RuntimeError("native 2x2 max pooling differs from max_pool2d")


KERNEL = native_build.NativeKernel(
    "sparse-convolution",
    lambda: native_build.build("sparse_conv", _SRC, extra_flags=["-ffp-contract=fast"]),
    _declare, _self_test, lambda lib: lib.sc_omp_threads(), "PyTorch's dense convolution")


library, available, status = KERNEL.library, KERNEL.available, KERNEL.status


def _ptr(t: Optional[torch.Tensor]):
    return None if t is None else t.data_ptr()


def _prepare(x: torch.Tensor, cw: ConvWeights) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """``(x contiguous, the empty output [N, O, Ho, Wo], (n, c, h, w, ho, wo))`` of a conv."""
    n, c, h, w = x.shape
    ho, wo = cw.output_size(h, w)
    y = torch.empty(n, cw.out_channels, ho, wo, dtype=torch.float32)
    return x.contiguous(), y, (n, c, h, w, ho, wo)


def spike_path() -> bool:
    """Whether the loaded kernel has the spike ("triples") path of ``direct`` (AVX2 CPUs)."""
    lib = KERNEL.library()
    return lib is not None and bool(lib.sc_spike_path())


def direct_conv(x: torch.Tensor, cw: ConvWeights, bias: Optional[torch.Tensor],
                spikes: bool = True) -> torch.Tensor:
    """``direct`` kernel: x ``[N, C, H, W]`` float32 -> ``[N, O, Ho, Wo]``. On an input of
    0 / 1 only, the spike path runs where it exists (``spikes=False``: never)."""
    x, y, (n, c, h, w, ho, wo) = _prepare(x, cw)
    if y.numel() == 0:
        return y
    if spikes and KERNEL.lib.sc_spike_path():
        gptr, gcols, gtab = cw.triples_for_size(h, w)
        done = KERNEL.lib.sc_spikes_f32(x.data_ptr(), n, c, h, w, cw.ph, cw.pw,
                                        cw.out_channels, ho, wo, gptr.data_ptr(),
                                        gcols.data_ptr(), gtab.data_ptr(), _ptr(bias),
                                        y.data_ptr())
        if done == 1:
            raise MemoryError("sparse conv kernel: out of memory for its scratch buffer")
        if done == 0:
            return y
    offs, _ = cw.for_size(h, w)
    if KERNEL.lib.sc_direct_f32(x.data_ptr(), n, c, h, w, cw.ph, cw.pw, cw.out_channels, ho,
                                wo, cw.ptr.data_ptr(), offs.data_ptr(), cw.vals.data_ptr(),
                                _ptr(bias), y.data_ptr()):
        raise MemoryError("sparse conv kernel: out of memory for its scratch buffer")
    return y


def events_conv(x: torch.Tensor, cw: ConvWeights, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``events`` kernel: x ``[N, C, H, W]`` float32 -> ``[N, O, Ho, Wo]``
    (requires ``cw.events_ok``)."""
    x, y, (n, c, h, w, ho, wo) = _prepare(x, cw)
    if y.numel() == 0:
        return y
    _, delta = cw.for_size(h, w)
    if KERNEL.lib.sc_events_f32(x.data_ptr(), n, c, h, w, cw.out_channels, cw.kh, cw.kw,
                                cw.ph, cw.pw, ho, wo, cw.cptr.data_ptr(), delta.data_ptr(),
                                cw.cvals.data_ptr(), _ptr(bias), y.data_ptr()):
        raise MemoryError("sparse conv kernel: out of memory for its scratch buffer")
    return y


def _pool2(fn, x: torch.Tensor, ceil_mode: bool) -> torch.Tensor:
    h, w = x.shape[-2:]
    ho, wo = ((h + 1) // 2, (w + 1) // 2) if ceil_mode else (h // 2, w // 2)
    x = x.contiguous()
    y = torch.empty(*x.shape[:-2], ho, wo, dtype=torch.float32)
    planes = x.numel() // max(h * w, 1)
    if planes and ho and wo:
        fn(x.data_ptr(), planes, h, w, ho, wo, y.data_ptr())
    return y


def avg_pool2(x: torch.Tensor, ceil_mode: bool) -> torch.Tensor:
    """2x2 / stride-2 average pooling of x ``[..., H, W]`` float32 (padding 0), bit-identical
    to ``F.avg_pool2d(x, 2, 2, ceil_mode=ceil_mode)``, in one pass."""
    return _pool2(KERNEL.lib.sc_avgpool2_f32, x, ceil_mode)


def max_pool2(x: torch.Tensor, ceil_mode: bool) -> torch.Tensor:
    """2x2 / stride-2 max pooling of x ``[..., H, W]`` float32 (padding 0), bit-identical to
    ``F.max_pool2d(x, 2, 2, ceil_mode=ceil_mode)`` (NaN propagates), in one pass."""
    return _pool2(KERNEL.lib.sc_maxpool2_f32, x, ceil_mode)
