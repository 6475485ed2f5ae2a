"""One level of IMP sweeps against dense and both controls, paired over seeds.

    python benchmarks/imp_level_stats.py LEVEL CELLS.csv [CELLS.csv ...] [--runs SWEEP_DIR ...]

Reads the ``cells.csv`` of one or more ``spikesculpt sweep --lottery imp --controls
reinit,random`` sweeps (several files = more seeds of the same search, e.g. seeds 0-4 and 5-9)
and prints, for validation and test accuracy: the mean ± std of dense (level 0), the ticket at
level LEVEL and its ``reinit`` and ``random`` controls, and the paired differences ticket − dense,
ticket − reinit, ticket − random and level LEVEL−1 − dense, each as mean [95% t-interval] in
points (``spikesculpt.metrics.stats.paired_difference``). Issue 14's IMP target reads LEVEL =
the first level at density ≤ 0.1. With ``--runs``, each sweep directory is walked for the
per-layer firing rates of every level-LEVEL ticket and control (``metrics.json``; silent layers).

Used for docs/lottery.md's tables, e.g. in
``benchmarks/results/imp_mnist1d_amd-epyc_20261201-issue14/``:

    python ../../imp_level_stats.py 4 nobn-h512-r44x4-e30_cells.csv \
        nobn-h512-r44x4-e30-s5to9_cells.csv
"""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from spikesculpt.metrics.stats import diff_ci, mean_std, paired_difference, pct

ROLES = {"ticket": "", "reinit": "reinit", "random": "random"}


def read_cells(paths) -> list[dict]:
    rows = []
    for path in paths:
        with open(path, newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def accuracies(rows, role: str, level: int, metric: str) -> dict[int, float]:
    """{seed: metric} of the trained cells with this role ('' = the search's own level)."""
    return {int(r["seed"]): float(r[metric]) for r in rows
            if r["role"] == role and r["level"] == str(level) and r["status"] == "trained"}


def level_stats(rows, level: int, metric: str) -> dict:
    """Accuracies and paired differences at ``level``: {"dense", "ticket", "reinit", "random"}
    as {seed: accuracy}, and "ticket-dense", "ticket-reinit", "ticket-random", "previous-dense"
    as ``paired_difference`` results (fractions, not points)."""
    out = {"dense": accuracies(rows, "", 0, metric)}
    out.update({name: accuracies(rows, role, level, metric) for name, role in ROLES.items()})
    for control in ("dense", "reinit", "random"):
        out[f"ticket-{control}"] = paired_difference(out["ticket"], out[control])
    out["previous-dense"] = paired_difference(accuracies(rows, "", level - 1, metric),
                                              out["dense"])
    return out


def firing(sweep_dir: str, level: int):
    """(path, silent_layers, layer_firing_rates) of each level-``level`` ticket and control."""
    for root, _, files in sorted(os.walk(sweep_dir)):
        # the level's own folder, or a control's folder inside it
        if "metrics.json" in files and f"level_{level}" in Path(root).parts[-2:]:
            m = json.loads((Path(root) / "metrics.json").read_text())
            yield (os.path.relpath(root, sweep_dir), m.get("silent_layers"),
                   m.get("layer_firing_rates") or {})


def main(argv) -> None:
    runs = argv[argv.index("--runs") + 1:] if "--runs" in argv else []
    argv = argv[:argv.index("--runs")] if "--runs" in argv else argv
    if len(argv) < 2 or not argv[0].isdigit():
        sys.stderr.write("usage: python benchmarks/imp_level_stats.py LEVEL CELLS.csv [...] "
                         "[--runs SWEEP_DIR ...] (LEVEL: a level number, e.g. 4)\n")
        sys.exit(2)
    missing = [p for p in argv[1:] + runs if not os.path.exists(p)]
    if missing:
        sys.stderr.write(f"error: no such file or directory: {missing[0]} (give the cells.csv "
                         f"of a finished sweep)\n")
        sys.exit(2)
    level, rows = int(argv[0]), read_cells(argv[1:])
    for metric in ("val_accuracy", "test_accuracy"):
        s = level_stats(rows, level, metric)
        print(metric, "n =", len(s["ticket"]), *(f"| {k} {pct(*mean_std(s[k].values()))}"
                                                 for k in ("dense", "ticket", "reinit", "random")))
        for k in ("ticket-dense", "ticket-reinit", "ticket-random"):
            print(f"  {k:14s}", diff_ci(s[k]))
        print(f"  level {level - 1} - dense", diff_ci(s["previous-dense"]))
    for sweep in runs:
        for path, silent, rates in firing(sweep, level):
            print(path, "silent:", silent, "rates", " ".join(f"{v:.3f}" for v in rates.values()))


if __name__ == "__main__":
    main(sys.argv[1:])
