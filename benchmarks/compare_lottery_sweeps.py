"""Paired comparison of the tickets of two lottery sweeps, level by level (issue 14, IMP floors).

A sweep's report pairs a ticket with its own dense level 0 and controls; two *variants* of the
search (e.g. ``--rescale --prune layer`` against the default) live in two sweeps. This reads
both ``cells.csv`` and writes, per level, A − B of the ticket rows (``role`` empty) over the
seeds both have: mean and 95% Student-t interval (``spikesculpt.metrics.stats``), for
validation accuracy (the number to choose on) and test accuracy (reported once).

``--density D`` compares searches whose levels differ (another ``--rate`` or ``--rounds``, or
other epochs, so another dense network): in each sweep the *first level with density <= D*
(e.g. D = 0.1: the first ticket at >= 90% sparsity), and A − B of both its accuracy and its
gap to its own dense level 0 (ticket − dense, per seed), paired over seeds.

    python benchmarks/compare_lottery_sweeps.py sweeps/nobn-layer-rescale sweeps/nobn-global
    python benchmarks/compare_lottery_sweeps.py sweeps/bn-r25x8 sweeps/bn-r50x4 --density 0.1
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from spikesculpt.metrics.stats import diff_ci, paired_difference

METRICS = ("val_accuracy", "test_accuracy")


def tickets(sweep: Path) -> dict:
    """``{level: {metric: {seed: value}}}`` of the finished ticket rows of ``sweep``.

    ``metric`` is ``val_accuracy``, ``test_accuracy`` or ``density`` (measured mask density).
    """
    out: dict = {}
    with open(sweep / "cells.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["role"] or row["status"] == "failed" or not row["level"]:
                continue
            level = out.setdefault(int(row["level"]), {m: {} for m in METRICS + ("density",)})
            for metric, by_seed in level.items():
                by_seed[int(row["seed"])] = float(row[metric])
    return out


def first_level_at(levels: dict, density: float) -> int:
    """The first level whose measured density is <= ``density`` on every seed."""
    for level in sorted(levels):
        if level and max(levels[level]["density"].values()) <= density:
            return level
    raise SystemExit(f"no level at density <= {density}; levels: "
                     f"{ {k: max(v['density'].values()) for k, v in levels.items()} }")


def gap_to_dense(levels: dict, level: int, metric: str) -> dict:
    """``{seed: ticket − dense}`` of ``metric`` at ``level`` (dense = level 0, same seed)."""
    ticket, dense = levels[level][metric], levels[0][metric]
    return {s: ticket[s] - dense[s] for s in ticket if s in dense}


def per_level(a: dict, b: dict, names: tuple[str, str]) -> None:
    """Print A − B of the tickets of every level both sweeps have."""
    print(f"| level | val: {names[0]} − {names[1]} [95% CI] | test: same | n |")
    print("|---|---|---|---|")
    for level in sorted(set(a) & set(b)):
        val = paired_difference(a[level]["val_accuracy"], b[level]["val_accuracy"])
        test = paired_difference(a[level]["test_accuracy"], b[level]["test_accuracy"])
        print(f"| {level} | {diff_ci(val)} | {diff_ci(test)} | {val['n'] if val else 0} |")


def at_density(a: dict, b: dict, names: tuple[str, str], density: float) -> None:
    """Print A − B at each sweep's first level with density <= ``density``.

    Rows: the ticket's accuracy, and its gap to its own dense network (ticket − dense per seed;
    the fair comparison when A and B train their dense networks differently, e.g. epochs).
    """
    level_a, level_b = first_level_at(a, density), first_level_at(b, density)
    print(f"{names[0]}: level {level_a} (density {max(a[level_a]['density'].values()):.4f}); "
          f"{names[1]}: level {level_b} (density {max(b[level_b]['density'].values()):.4f})")
    print(f"| quantity | val: {names[0]} − {names[1]} [95% CI] | test: same | n |")
    print("|---|---|---|---|")
    for label, pick in (("ticket accuracy", lambda lv, k, m: lv[k][m]),
                        ("ticket − dense", gap_to_dense)):
        val, test = (paired_difference(pick(a, level_a, m), pick(b, level_b, m))
                     for m in METRICS)
        print(f"| {label} | {diff_ci(val)} | {diff_ci(test)} | {val['n'] if val else 0} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="sweep directory A")
    p.add_argument("b", type=Path, help="sweep directory B (the reference)")
    p.add_argument("--density", type=float, default=None,
                   help="compare each sweep's first level at density <= this (e.g. 0.1) "
                        "instead of level by level")
    args = p.parse_args()
    a, b = tickets(args.a), tickets(args.b)
    names = (args.a.name, args.b.name)
    if args.density is None:
        per_level(a, b, names)
    else:
        at_density(a, b, names, args.density)


if __name__ == "__main__":
    main()
