"""Statistics over seeds, the same everywhere results are compared (sweep reports, benchmarks).

- ``mean_std``: mean and sample standard deviation (n - 1) over seeds.
- ``paired_difference``: A − B on the seeds both have (same data split, same initialisation
  stream), its mean and a 95% Student-t confidence interval of the mean difference. Pairing
  removes the seed-to-seed variance both share, so it is the test to use when two methods are
  compared; unpaired mean ± std columns overlap far more often.
- ``mean_ci95``: a mean with its 95% Student-t interval (e.g. of timing ratios over repeats).
- ``pct`` / ``diff_ci``: how both are written (percent, percentage points).
"""

from __future__ import annotations

import math
import statistics

from scipy.stats import t as student_t


def mean_std(values) -> tuple[float, float]:
    """(mean, sample std) of the non-None ``values``; (nan, nan) if none, std 0 for one."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (two-sided 95%)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(student_t.ppf(0.975, df))


def paired_difference(a: dict, b: dict) -> dict | None:
    """A − B over the seeds both have. ``a``, ``b``: {seed: value}.

    Returns ``{"n", "mean", "std", "ci95": [low, high], "seeds"}`` with d_s = a_s − b_s,
    mean = Σ d_s / n, std = sample std of d, ci95 = mean ± t_{0.975, n−1} · std / √n
    (``[nan, nan]`` for n = 1: one seed has no interval). None if no seed is shared.
    """
    seeds = sorted(set(a) & set(b), key=str)
    seeds = [s for s in seeds if a[s] is not None and b[s] is not None]
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    if not diffs:
        return None
    return {**mean_ci95(diffs), "seeds": seeds}


def mean_ci95(values) -> dict:
    """``{"n", "mean", "std", "ci95": [low, high]}`` of ``values`` (non-empty): the mean with a
    95% Student-t interval, mean ± t_{0.975, n−1} · std / √n (``[nan, nan]`` for n = 1)."""
    values = [float(v) for v in values]
    mean, std = mean_std(values)
    if len(values) > 1:
        half = t_quantile_975(len(values) - 1) * std / math.sqrt(len(values))
        ci = [mean - half, mean + half]
    else:
        ci = [float("nan"), float("nan")]
    return {"n": len(values), "mean": mean, "std": std, "ci95": ci}


def pct(mean: float, std: float | None = None, digits: int = 2) -> str:
    """``93.22 ± 0.43`` from fractions (``—`` for nan)."""
    if math.isnan(mean):
        return "—"
    if std is None:
        return f"{100 * mean:.{digits}f}"
    return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}"


def diff_ci(d: dict | None) -> str:
    """``+2.05 [+0.91, +3.19]`` (percentage points, 95% CI) of a paired difference."""
    if d is None:
        return "—"
    low, high = d["ci95"]
    if math.isnan(low):
        return f"{100 * d['mean']:+.2f} (n = 1)"
    return f"{100 * d['mean']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"
