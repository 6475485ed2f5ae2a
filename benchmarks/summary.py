"""Statistics every accuracy benchmark here reports in the same way (imported by the scripts).

- ``mean_std``, ``paired_difference`` (A − B on the same seeds, mean and 95% Student-t
  interval), ``pct``, ``diff_ci``: from ``spikesculpt.metrics.stats``, the code the sweep
  report uses too (re-exported here for the scripts).
- ``choose_on_validation``: the candidate with the best mean *validation* accuracy. The test
  split is never used to choose anything (defaults, hyper-parameters, epochs): a benchmark that
  chooses reports the validation numbers of every candidate and the test number of the chosen
  one only.
- ``choose_default``: how a *default* is chosen: the current default stays unless the
  validation-best candidate beats it on the same seeds with a 95% CI above zero (a default is
  not changed to chase seed noise).
"""

from __future__ import annotations

from spikesculpt.metrics.stats import (  # noqa: F401  (the scripts import them from here)
    diff_ci,
    mean_ci95,
    mean_std,
    paired_difference,
    pct,
    t_quantile_975,
)


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
