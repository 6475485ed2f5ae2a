"""python h512_stats.py LEVEL CELLS.csv [CELLS.csv ...]

IMP MLP 512-512: level LEVEL (the first at density <= 0.1) vs dense (level 0) and the controls,
paired over seeds, and level LEVEL-1 vs dense; cells files given after the level:
    python h512_stats.py 8 bn-h512-r25x8-e15_cells.csv bn-h512-r25x8-e15-s5to9_cells.csv
    python h512_stats.py 4 nobn-h512-r44x4-e30_cells.csv"""
import csv, sys
from spikesculpt.metrics.stats import paired_difference, diff_ci, mean_std, pct
L = int(sys.argv[1])
rows = [r for f in sys.argv[2:] for r in csv.DictReader(open(f))]
def get(role, level, m):
    return {int(r["seed"]): float(r[m]) for r in rows
            if r["role"] == role and r["level"] == str(level) and r["status"] == "trained"}
for m in ("val_accuracy", "test_accuracy"):
    dense, ticket = get("", 0, m), get("", L, m)
    reinit, random_ = get("reinit", L, m), get("random", L, m)
    print(m, "n =", len(ticket), "dense", pct(*mean_std(dense.values())), "ticket", pct(*mean_std(ticket.values())),
          "reinit", pct(*mean_std(reinit.values())), "random", pct(*mean_std(random_.values())))
    print("  ticket - dense ", diff_ci(paired_difference(ticket, dense)))
    print("  ticket - reinit", diff_ci(paired_difference(ticket, reinit)))
    print("  ticket - random", diff_ci(paired_difference(ticket, random_)))
    # one level before, for reference
    print(f"  level {L - 1} - dense", diff_ci(paired_difference(get("", L - 1, m), dense)))
