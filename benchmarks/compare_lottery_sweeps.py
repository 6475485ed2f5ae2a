"""Paired comparison of the tickets of two lottery sweeps, level by level (issue 14, IMP floors).

A sweep's report pairs a ticket with its own dense level 0 and controls; two *variants* of the
search (e.g. ``--rescale --prune layer`` against the default) live in two sweeps. This reads
both ``cells.csv`` and writes, per level, A − B of the ticket rows (``role`` empty) over the
seeds both have: mean and 95% Student-t interval (``spikesculpt.metrics.stats``), for
validation accuracy (the number to choose on) and test accuracy (reported once).

    python benchmarks/compare_lottery_sweeps.py sweeps/nobn-layer-rescale sweeps/nobn-global
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from spikesculpt.metrics.stats import diff_ci, paired_difference


def tickets(sweep: Path) -> dict:
    """``{level: {metric: {seed: value}}}`` of the finished ticket rows of ``sweep``."""
    out: dict = {}
    with open(sweep / "cells.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["role"] or row["status"] == "failed" or not row["level"]:
                continue
            level = out.setdefault(int(row["level"]), {"val_accuracy": {}, "test_accuracy": {}})
            for metric, by_seed in level.items():
                by_seed[int(row["seed"])] = float(row[metric])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="sweep directory A")
    p.add_argument("b", type=Path, help="sweep directory B (the reference)")
    args = p.parse_args()
    a, b = tickets(args.a), tickets(args.b)
    print(f"| level | val: {args.a.name} − {args.b.name} [95% CI] | test: same | n |")
    print("|---|---|---|---|")
    for level in sorted(set(a) & set(b)):
        val = paired_difference(a[level]["val_accuracy"], b[level]["val_accuracy"])
        test = paired_difference(a[level]["test_accuracy"], b[level]["test_accuracy"])
        print(f"| {level} | {diff_ci(val)} | {diff_ci(test)} | {val['n'] if val else 0} |")


if __name__ == "__main__":
    main()
