"""``spikesculpt lottery``: find spiking lottery tickets; a folder per level, a summary, a plot.

    spikesculpt lottery --strategy imp --rounds 10 --rate 0.25 --rewind 1ep --controls reinit,random
    spikesculpt lottery --strategy early-bird --early-time --timesteps 8
    spikesculpt lottery --strategy score --binary-weights --rounds 3 --rate 0.5
    spikesculpt lottery --strategy multilevel --model spikformer --patch-keep 0.5

The training of every level takes the ``train`` flags (model, data, epochs, optimizer, T, ...).
Outputs go to ``--out DIR`` (default ``RUNS_ROOT/lottery-<strategy>-<model>-<dataset>-<hash>``):
``level_K/`` (mask, model, metrics.json), ``summary.json``, ``accuracy_vs_density.png``.
An interrupted search continues with the same command plus ``--resume``; the same command with
``--controls`` adds controls to a finished search without recomputing its levels.
"""

from __future__ import annotations

import argparse

from spikesculpt.cli.flags import Flag, add_flags, declared_flags, given_values, without
from spikesculpt.cli.launch import add_nproc_flag
from spikesculpt.cli.train import (
    add_config_flags,
    check_method_flags,
    config_flags,
    config_from_args,
    method_flags_given,
)
from spikesculpt.config import overlay
from spikesculpt.core.options import comma_list
from spikesculpt.experiments.lottery import STRATEGIES, run_lottery
from spikesculpt.experiments.lottery.options import LotteryConfig

# The declarations of LotteryConfig's flags, kept here until experiments/lottery/options.py
# declares its fields itself (``core.options.option``; a declaration there wins over this one,
# and then this entry can go; see docs/architecture.md).
LOTTERY_OPTIONS = {
    "strategy": {"help": "ticket search", "choices": STRATEGIES.names,
                 "kind": "lottery strategy"},
    "rounds": {"help": "pruning levels after the dense level 0"},
    "rate": {"help": "fraction of the remaining weights pruned per round, (0, 1); "
                     "score/multilevel: level K has density (1-rate)^K"},
    "rewind": {"help": "rewind point: Nit (iterations) or Nep (epochs), 0it = the "
                       "initialisation"},
    "prune": {"help": "magnitude ranking: global | layer"},
    "et_lambda": {"help": "early-time: largest normalised KL accepted"},
    "et_warmup": {"help": "early-time: epochs at full T before T' is chosen"},
    "eb_q": {"help": "early-bird: masks of the last q epochs compared"},
    "eb_tau": {"help": "early-bird: stop below this Hamming distance"},
    "evaluate": {"help": "with --early-time / early-bird: train the ticket of all levels, or "
                         "only of level 0 and the last (ends)"},
    "early_time": {"help": "search with fewer time steps T' (Kim et al. 2022); tickets train "
                           "with T"},
    "binary_weights": {"help": "score/multilevel: binary weights alpha*sign(W) (biprop)"},
    "controls": {"help": "comma-separated controls: reinit,random (random re-initialisation, "
                         "random pruning at the same per-layer densities)",
                 "parse": comma_list, "metavar": "LIST"},
}
# LotteryConfig fields set by the train flags of the same name (--dense-first, --dense-last).
SHARED_WITH_TRAIN = ("dense_first", "dense_last")


def lottery_flags() -> list[Flag]:
    """The flags of ``LotteryConfig`` (less those it shares with the train flags)."""
    return without(declared_flags(LotteryConfig, extra=LOTTERY_OPTIONS),
                   [f"--{name.replace('_', '-')}" for name in SHARED_WITH_TRAIN])


def train_flags() -> list[Flag]:
    """The train flags a lottery takes: no --method (tickets are the search's own masks) and
    of the sparse-method options only those it reads itself."""
    return [f for f in without(config_flags(), ["--method"])
            if f.section != ("sparse",) or f.field in SHARED_WITH_TRAIN]


def add_parser(sub) -> None:
    names = STRATEGIES.names()
    p = sub.add_parser("lottery", help=f"find spiking lottery tickets ({', '.join(names)})",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(p, lottery_flags())
    add_config_flags(p, train_flags())
    p.add_argument("--out", metavar="DIR", help="search directory (default: RUNS_ROOT/lottery-...)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search")
    add_nproc_flag(p)
    p.set_defaults(func=run)


def lottery_config_from_args(args: argparse.Namespace) -> LotteryConfig:
    values = given_values(args, lottery_flags())
    for key in SHARED_WITH_TRAIN:
        if getattr(args, key, None):
            values[key] = True
    return overlay(LotteryConfig(), values, "command line").validate()


def _pct(value) -> str:
    return "      -" if value is None else f"{100 * value:6.2f}%"


def run(args: argparse.Namespace) -> int:

    lottery = lottery_config_from_args(args)
    train = config_from_args(args)
    check_method_flags([train.method], method_flags_given(args, SHARED_WITH_TRAIN))
    result = run_lottery(train, lottery, out=args.out, runs_root=args.runs_root,
                         resume=args.resume, progress=not args.no_progress)
    s = result.summary
    if result.status == "already-finished":
        print(f"already finished: results in {result.path} (nothing to do)")
    controls = s.get("controls", {})
    by_level = {kind: {r["level"]: r for r in rows} for kind, rows in controls.items()}
    print(f"\n{s['strategy']} tickets: {s['model']} on {s['dataset']}, {s['epochs']} epochs, "
          f"T={s['timesteps']}, seed {s['seed']} (test accuracy of the best-validation model)")
    head = f"{'level':>5} {'density':>8} {'sparsity':>8} {'test acc':>9} {'val acc':>8} " \
           f"{'search s':>8}"
    for kind in by_level:
        head += f" {kind:>9}"
    print(head)
    for row in s["levels"]:
        line = (f"{row['level']:>5} {row['density']:8.4f} {row['sparsity']:8.4f} "
                f"{_pct(row['test_accuracy']):>9} {_pct(row['val_accuracy']):>8} ")
        line += f"{row['search_seconds']:8.1f}" if row.get("search_seconds") is not None \
            else f"{'-':>8}"
        for kind, rows in by_level.items():
            found = rows.get(row["level"])
            line += f" {_pct(found['test_accuracy'] if found else None):>9}"
        print(line)
    empty = [(row["level"], row["empty_layers"]) for row in s["levels"]
             if row.get("empty_layers")]
    if empty:
        level, names = empty[0]
        print(f"warning: from level {level} on, {', '.join(names)} has no connection left (layer "
              f"collapse of global magnitude pruning); try --prune layer or --dense-first/last")
    if s.get("early_time"):
        print(f"early-time: searched with T'={s['early_time']['timesteps']} "
              f"(normalised KL {s['early_time']['normalised_kl']})")
    print(f"search time {s['search_seconds']:.1f} s | {result.path}")
    return 0
