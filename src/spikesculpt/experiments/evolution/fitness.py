"""Fitness of a candidate initial wiring rule: accuracy plus two decaying regularisers.

    fitness = accuracy + λ_s(t) · S(O) + λ_d(t) · D(candidate, elite_{t-1})

From the paper (Pan et al., arXiv 2411.06792): a candidate is an initial wiring rule, scored
after training; the fitness holds two *dynamic* regularisers — a "spatial entropy" raising the
information quality of the gene interaction, and a "temporal difference" shaping the distribution
of the neuronal encodings across generations. The paper gives no formulas; ours (design notes §3.3):

- ``accuracy``: validation accuracy after a short training on the training split (the test split
  is never used in the search).
- spatial entropy S(O) ∈ [0, 1]: the normalised spectral entropy of the trained interaction O,
  ``p_i = s_i / Σ_j s_j`` over its singular values, ``S = −Σ p_i log p_i / log g``. S = 1 when
  every gene direction carries the same weight (O well conditioned, full effective rank), → 0
  when one direction dominates (rank collapse). g = 1 gives S = 0.
- temporal difference D ∈ [0, 1): how far the candidate's (trained) encoding distribution is from
  the previous generation's elite. Per encoding matrix m (X_in and X_out of every encoded layer),
  the 1-Wasserstein distance between the distributions of its entries, approximated on
  ``QUANTILES`` quantiles, normalised ``W1 / (W1 + σ_cand + σ_elite)`` (σ: the entries' std);
  D is the mean over matrices. It is 0 in the first generation (there is no previous elite).
  Added with a positive weight, it rewards rules that move away from the last elite: an
  exploration pressure that fades with λ_d(t).
- schedule: ``λ(t) = λ0 · ½ (1 + cos(π t / G))`` for generation t = 0 … G−1 of G (full weight
  first, close to 0 at the end, where the fitness is the accuracy); λ0 = 0.05 by default for
  both, i.e. each regulariser is worth at most 5 accuracy points. Each can be switched off.
"""

from __future__ import annotations

import math

import numpy as np
import torch

QUANTILES = 64


def spatial_entropy(interaction) -> float:
    """Normalised spectral entropy of the singular values of O [g, g], in [0, 1]."""
    o = torch.as_tensor(np.asarray(interaction), dtype=torch.float64)
    g = o.shape[0]
    if g < 2:
        return 0.0
    s = torch.linalg.svdvals(o)
    total = float(s.sum())
    if not total > 0 or not math.isfinite(total):
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(-(p * p.log()).sum() / math.log(g))


def encoding_summary(encodings: dict) -> dict:
    """``{matrix name: {"q": QUANTILES quantiles, "std": σ}}`` of ``{name: array}`` encodings."""
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    out = {}
    for name, values in encodings.items():
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        out[name] = {"q": np.quantile(v, levels), "std": float(v.std())}
    return out


def temporal_difference(candidate: dict, elite) -> float:
    """Mean normalised W1 distance of two :func:`encoding_summary` s (0 if ``elite`` is None)."""
    if elite is None:
        return 0.0
    terms = []
    for name, c in candidate.items():
        e = elite.get(name)
        if e is None:
            continue
        w1 = float(np.abs(np.asarray(c["q"]) - np.asarray(e["q"])).mean())
        denom = w1 + c["std"] + e["std"]
        terms.append(w1 / denom if denom > 0 else 0.0)
    return float(np.mean(terms)) if terms else 0.0


def regulariser_weight(lambda0: float, generation: int, generations: int) -> float:
    """``λ(t) = λ0 · ½ (1 + cos(π t / G))``."""
    if generations <= 0:
        return float(lambda0)
    return float(lambda0) * 0.5 * (1.0 + math.cos(math.pi * generation / generations))


def fitness(accuracy: float, spatial: float, temporal: float, lambda_spatial: float,
            lambda_temporal: float) -> float:
    return float(accuracy + lambda_spatial * spatial + lambda_temporal * temporal)
