"""``spikesculpt compare``: train several methods on the same config and print them side by side.

    spikesculpt compare --methods dense,esl --density 0.1 --epochs 30

Every method gets exactly the same data split, model, epochs, optimizer, schedule and seed; only
``method`` differs. Each run lands in its own hash-named run directory (a finished one is reused,
not retrained), and the table shows test / validation accuracy of the best-validation model,
connection density, firing rate and training time.
"""

from __future__ import annotations

import argparse
import copy

from spikesculpt.cli.flags import without
from spikesculpt.cli.launch import add_nproc_flag
from spikesculpt.cli.train import (
    add_config_flags,
    check_method_flags,
    config_flags,
    config_from_args,
    method_flags_given,
)
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.train_run import run_training
from spikesculpt.methods import METHODS, resolved_config


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="train several methods side by side", description=__doc__)
    p.add_argument("--methods", default="dense,esl",
                   help="comma-separated methods (spikesculpt list methods); default dense,esl")
    add_config_flags(p, without(config_flags(), ['--method']))  # every method: --methods
    add_nproc_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    methods = list(dict.fromkeys(m.strip() for m in args.methods.split(",") if m.strip()))
    if not methods:
        raise UserError(f"--methods names no method ({args.methods!r}); pass e.g. "
                        f"--methods dense,esl (spikesculpt list methods)")
    for m in methods:
        METHODS.get(m)  # unknown names fail before anything trains
    base = config_from_args(args)
    check_method_flags(methods, method_flags_given(args))
    configs = []
    for m in methods:
        config = copy.deepcopy(base)
        config.method = m
        resolved_config(config.validate())  # a method's missing input fails before any training
        configs.append(config)
    rows = []
    for m, config in zip(methods, configs):
        result = run_training(config, runs_root=args.runs_root, progress=not args.no_progress)
        rows.append((m, result))
    print(f"\n{base.model} on {base.dataset}, {base.epochs} epochs, T={base.timesteps}, "
          f"seed {base.seed} (test accuracy of the best-validation model)")
    print(f"{'method':<8} {'test acc':>9} {'val acc':>8} {'density':>8} {'firing':>7} "
          f"{'train s':>8}  run directory")
    for m, r in rows:
        x = r.metrics
        print(f"{m:<8} {100 * x['test_accuracy']:8.2f}% {100 * x['val_accuracy']:7.2f}% "
              f"{x.get('mask_density', x['density']):8.3f} {x['firing_rate']:7.3f} "
              f"{x['train_seconds']:8.1f}  {r.run_dir.path}")
    return 0
