"""``spikesculpt evaluate RUN_DIR``: reload a run's best model and recompute its metrics."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="recompute the metrics of a finished run",
                       description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--json", action="store_true", help="print every metric as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spikesculpt.train.run import evaluate_run

    m = evaluate_run(args.run_dir, device=args.device)
    if args.json:
        print(json.dumps(m, indent=2))
    else:
        print(f"{m['run_dir']}: test accuracy {100 * m['test_accuracy']:.2f}% | "
              f"val {100 * m['val_accuracy']:.2f}% | firing rate {m['firing_rate']:.3f} | "
              f"density {m['density']:.3f} ({m['nonzero_prunable']}/{m['params_prunable']} "
              f"prunable weights)")
    return 0
