"""``spikesculpt report SWEEP_DIR``: report.md and a self-contained report.html of a sweep.

    spikesculpt report sweeps/m1d              # writes sweeps/m1d/report.md, report.html
    spikesculpt report sweeps/m1d --out docs/  # elsewhere

Tables of test and validation accuracy (mean ± std over seeds) per method × density, the cost
of each, paired differences vs the controls (dense, static at the same density, a smaller dense
network with as many connections, lottery controls) with 95% intervals, figures (accuracy vs
density and vs SynOps / energy with the Pareto front, training curves, per-layer density,
topology turnover), the failed cells, and how the sweep was made. A partly finished sweep
reports its finished cells and says how many are missing. docs/report.md explains each part.
"""

from __future__ import annotations

import argparse

from spikesculpt.experiments.sweep.report import write_report


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="report.md + report.html of a sweep directory",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="the folder spikesculpt sweep wrote "
                                                          "(its --out)")
    p.add_argument("--out", metavar="DIR",
                   help="where to write report.md and report.html (default: SWEEP_DIR)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = write_report(args.sweep_dir, out=args.out)
    print(files.markdown)
    print(files.html)
    return 0
