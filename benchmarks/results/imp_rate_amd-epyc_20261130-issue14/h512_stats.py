"""python h512_stats.py bn-h512-r25x8-e15_cells.csv bn-h512-r25x8-e15-s5to9_cells.csv

IMP MLP 512-512 (BatchNorm), rate 0.251 x 8, 15 epochs: level 8 (density 0.0991) vs dense
(level 0) and the controls, paired over seeds; cells files given on the command line."""
import csv, sys
from spikesculpt.metrics.stats import paired_difference, diff_ci, mean_std, pct
rows = [r for f in sys.argv[1:] for r in csv.DictReader(open(f))]
def get(role, level, m):
    return {int(r["seed"]): float(r[m]) for r in rows
            if r["role"] == role and r["level"] == str(level) and r["status"] == "trained"}
for m in ("val_accuracy", "test_accuracy"):
    dense, ticket = get("", 0, m), get("", 8, m)
    reinit, random_ = get("reinit", 8, m), get("random", 8, m)
    print(m, "n =", len(ticket), "dense", pct(*mean_std(dense.values())), "ticket", pct(*mean_std(ticket.values())),
          "reinit", pct(*mean_std(reinit.values())), "random", pct(*mean_std(random_.values())))
    print("  ticket - dense ", diff_ci(paired_difference(ticket, dense)))
    print("  ticket - reinit", diff_ci(paired_difference(ticket, reinit)))
    print("  ticket - random", diff_ci(paired_difference(ticket, random_)))
    # level 7 (one level before, 86.8% sparse) for reference
    print("  level 7 - dense", diff_ci(paired_difference(get("", 7, m), dense)))
