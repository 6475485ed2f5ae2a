"""python imp_stats.py LEVEL CELLS.csv [CELLS.csv ...] [--runs SWEEP_DIR ...]

IMP searches of issue 14 on MNIST-1D: level LEVEL (the first at density <= 0.1) against dense
(level 0) and both controls, paired over seeds (mean [95% t-interval], points), validation and
test; level LEVEL-1 against dense for reference. With --runs, the sweep directories (not
committed: rerun job.sh) are read for each ticket's per-layer firing rates (silent layers).
    python imp_stats.py 4 bn-r44x4-e30_cells.csv bn-r44x4-e30-s5to9_cells.csv"""
import csv
import json
import os
import sys

from spikesculpt.metrics.stats import diff_ci, mean_std, paired_difference, pct

args = sys.argv[1:]
runs = args[args.index("--runs") + 1:] if "--runs" in args else []
args = args[:args.index("--runs")] if "--runs" in args else args
L = int(args[0])
rows = [r for f in args[1:] for r in csv.DictReader(open(f))]


def get(role, level, m):
    return {int(r["seed"]): float(r[m]) for r in rows
            if r["role"] == role and r["level"] == str(level) and r["status"] == "trained"}


for m in ("val_accuracy", "test_accuracy"):
    dense, ticket = get("", 0, m), get("", L, m)
    reinit, random_ = get("reinit", L, m), get("random", L, m)
    print(m, "n =", len(ticket), "| dense", pct(*mean_std(dense.values())),
          "| ticket", pct(*mean_std(ticket.values())),
          "| reinit", pct(*mean_std(reinit.values())), "| random", pct(*mean_std(random_.values())))
    print("  ticket - dense ", diff_ci(paired_difference(ticket, dense)))
    print("  ticket - reinit", diff_ci(paired_difference(ticket, reinit)))
    print("  ticket - random", diff_ci(paired_difference(ticket, random_)))
    print(f"  level {L - 1} - dense", diff_ci(paired_difference(get("", L - 1, m), dense)))
for sweep in runs:
    for root, _, files in sorted(os.walk(sweep)):
        level = root if os.path.basename(root) == f"level_{L}" else os.path.dirname(root)
        if "metrics.json" in files and os.path.basename(level) == f"level_{L}":
            m = json.load(open(os.path.join(root, "metrics.json")))
            rates = m.get("layer_firing_rates") or {}
            print(os.path.relpath(root, sweep), "silent:", m.get("silent_layers"),
                  "rates", " ".join(f"{v:.3f}" for v in rates.values()))
