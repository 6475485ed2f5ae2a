"""Paired comparison of two groups of gene-encoded cells, possibly from two sweeps (issue 14).

A sweep's report pairs ``lowrank`` with ``genetic`` and an evolved rule with ``genetic`` inside
one sweep; a variant run as another sweep (``--interaction-init identity``, the random rule
trained for the evolution's total epochs) is compared here. A group is ``SWEEP:METHOD`` or
``SWEEP:METHOD:ROLE`` (``role`` of cells.csv, e.g. ``evolved``); rows are matched by
``genetic.gene_dim`` and seed, and A − B is written per gene dimension: mean and 95% Student-t
interval (``spikesculpt.metrics.stats``) of validation accuracy (the number to choose on) and
test accuracy (reported once), in percentage points.

    python benchmarks/compare_genetic_sweeps.py sweeps/conv-identity:genetic sweeps/conv:genetic
    python benchmarks/compare_genetic_sweeps.py sweeps/conv:lowrank sweeps/conv:genetic
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from spikesculpt.metrics.stats import diff_ci, paired_difference

METRICS = ("val_accuracy", "test_accuracy")


def group(spec: str) -> dict:
    """``{gene_dim: {metric: {seed: value}}}`` of the finished rows ``SWEEP:METHOD[:ROLE]``
    (gene_dim None for a method that reads no gene dimension, e.g. ``dense``)."""
    sweep, method, *role = spec.split(":")
    role = role[0] if role else ""
    out: dict = {}
    with open(Path(sweep) / "cells.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["method"] != method or row["role"] != role or row["status"] == "failed":
                continue
            gene_dim = int(row["genetic.gene_dim"]) if row["genetic.gene_dim"] else None
            cell = out.setdefault(gene_dim, {m: {} for m in METRICS})
            for metric in METRICS:
                cell[metric][int(row["seed"])] = float(row[metric])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="group A: SWEEP:METHOD[:ROLE]")
    p.add_argument("b", help="group B (the reference): SWEEP:METHOD[:ROLE]")
    args = p.parse_args()
    a, b = group(args.a), group(args.b)
    print(f"A = {args.a}, B = {args.b}")
    print("| g | val: A − B [95% CI] | test: A − B [95% CI] | n |")
    print("|---|---|---|---|")
    if None in b and len(b) == 1:   # B has no gene dimension (dense): every g against it
        b = {g: b[None] for g in a}
    for g in sorted(set(a) & set(b), key=str):
        val = paired_difference(a[g]["val_accuracy"], b[g]["val_accuracy"])
        test = paired_difference(a[g]["test_accuracy"], b[g]["test_accuracy"])
        label = "—" if g is None else g
        print(f"| {label} | {diff_ci(val)} | {diff_ci(test)} | {val['n'] if val else 0} |")


if __name__ == "__main__":
    main()
