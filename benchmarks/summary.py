"""Statistics every accuracy benchmark here reports in the same way (imported by the scripts).

- ``mean_std``: mean and sample standard deviation over seeds.
- ``paired_difference``: method A − method B on the same seeds (same data split, same
  initialisation stream), mean and a 95% Student-t confidence interval of the mean difference.
  Pairing removes the seed-to-seed variance both share, so it is the test to use when two
  methods are compared; unpaired mean ± std columns overlap far more often.
- ``choose_on_validation``: the candidate with the best mean *validation* accuracy. The test
  split is never used to choose anything (defaults, hyper-parameters, epochs): a benchmark that
  chooses reports the validation numbers of every candidate and the test number of the chosen
  one only.
- ``choose_default``: how a *default* is chosen: the current default stays unless the
  validation-best candidate beats it on the same seeds with a 95% CI above zero (a default is
  not changed to chase seed noise).
"""

from __future__ import annotations

import math
import statistics


def mean_std(values) -> tuple[float, float]:
    """(mean, sample std) of the non-None ``values``; (nan, nan) if none, std 0 for one."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


# Student's t 97.5% quantiles for 1..30 degrees of freedom (scipy.stats.t.ppf(0.975, df))
T_975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
         2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
         2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
         2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (two-sided 95%): the
    table above, beyond 30 the Cornish-Fisher expansion around z = 1.95996 (error < 1e-5)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959963984540054
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def paired_difference(a: dict, b: dict) -> dict | None:
    """A − B over the seeds both have. ``a``, ``b``: {seed: value}.

    Returns ``{"n", "mean", "std", "ci95": [low, high], "seeds"}`` with d_s = a_s − b_s,
    mean = Σ d_s / n, std = sample std of d, ci95 = mean ± t_{0.975, n−1} · std / √n
    (``[nan, nan]`` for n = 1: one seed has no interval). None if no seed is shared.
    """
    seeds = sorted(set(a) & set(b), key=str)
    diffs = [float(a[s]) - float(b[s]) for s in seeds if a[s] is not None and b[s] is not None]
    if not diffs:
        return None
    mean, std = mean_std(diffs)
    if len(diffs) > 1:
        half = t_quantile_975(len(diffs) - 1) * std / math.sqrt(len(diffs))
        ci = [mean - half, mean + half]
    else:
        ci = [float("nan"), float("nan")]
    return {"n": len(diffs), "mean": mean, "std": std, "ci95": ci, "seeds": seeds}


def by_seed(rows, value: str = "test_accuracy", seed: str = "seed") -> dict:
    """{seed: row[value]} of ``rows`` (one row per seed)."""
    return {r[seed]: r.get(value) for r in rows}


def choose_on_validation(candidates: list[dict], mean: str = "val_mean",
                         std: str = "val_std") -> int:
    """Index of the candidate with the highest mean validation accuracy; ties: the smaller
    std, then the earlier candidate (so listing the current default first keeps it on a tie)."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    return min(range(len(candidates)),
               key=lambda i: (-candidates[i][mean], candidates[i].get(std, 0.0), i))


def choose_default(candidates: list[dict], default_index: int,
                   diff: str = "val_minus_default") -> tuple[int, int]:
    """(chosen index, validation-best index). The validation-best candidate replaces the current
    default (``candidates[default_index]``) only if its paired validation difference to it,
    ``candidate[diff]`` (see ``paired_difference``), has a 95% CI entirely above zero."""
    best = choose_on_validation(candidates)
    d = candidates[best].get(diff)
    beats = d is not None and d["ci95"][0] == d["ci95"][0] and d["ci95"][0] > 0
    return (best if best == default_index or beats else default_index), best


def pct(mean: float, std: float | None = None, digits: int = 2) -> str:
    """``93.22 ± 0.43`` from fractions (``—`` for nan)."""
    if mean != mean:
        return "—"
    if std is None:
        return f"{100 * mean:.{digits}f}"
    return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}"


def diff_ci(d: dict | None) -> str:
    """``+2.05 [+0.91, +3.19]`` (percentage points, 95% CI) of a paired difference."""
    if d is None:
        return "—"
    low, high = d["ci95"]
    if low != low:
        return f"{100 * d['mean']:+.2f} (n = 1)"
    return f"{100 * d['mean']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"
