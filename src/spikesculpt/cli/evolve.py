"""``spikesculpt evolve``: evolve the initial wiring rule of a gene-encoded network, train the best.

Network, data and training flags are those of ``spikesculpt train`` (``--epochs`` is the final
training; the short training of every candidate takes ``--eval-epochs``). See docs/genetic.md.
"""

from __future__ import annotations

import argparse

from spikesculpt.cli.parser import key_value, read_yaml_config
from spikesculpt.cli.train import (
    NEURON_FLAGS,
    TRAIN_FLAGS,
    add_genetic_arguments,
    flag_help,
    genetic_overrides,
)
from spikesculpt.config import TrainConfig, overlay
from spikesculpt.experiments.evolution.evolution import run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.evolution.search import SEARCHES
from spikesculpt.experiments.rundir import DEFAULT_RUNS_ROOT

EVOLVE_FLAGS = {
    "--population": ("population", int, "candidates per generation (>= 2)"),
    "--generations": ("generations", int, "generations (> 0)"),
    "--eval-epochs": ("eval_epochs", int, "epochs of the short training scoring a candidate"),
    "--sigma0": ("sigma0", float, "CMA-ES initial step size (x each gene's scale)"),
    "--lambda-spatial": ("lambda_spatial", float, "initial weight of the spatial entropy of O"),
    "--lambda-temporal": ("lambda_temporal", float,
                          "initial weight of the temporal difference of the encodings"),
    "--min-gene-dim": ("min_gene_dim", int, "several objectives: smallest gene dim searched"),
    "--batched": ("batched", str, "population evaluation: auto | stack | vmap | off"),
    "--workers": ("workers", int, "processes for one-at-a-time evaluation"),
}
SKIP = ("--method",)


def add_parser(sub) -> None:
    p = sub.add_parser("evolve", help="evolve the initial wiring rule (genetic encoding)",
                       description=__doc__)
    for flag, (key, typ, text) in {**TRAIN_FLAGS, **NEURON_FLAGS}.items():
        if flag not in SKIP:
            p.add_argument(flag, type=typ, default=None, help=flag_help(flag, key, text))
    for flag, (key, typ, text) in EVOLVE_FLAGS.items():
        p.add_argument(flag, type=typ, default=None,
                       help=f"{text} (default: {getattr(EvolutionConfig(), key)})")
    add_genetic_arguments(p)
    p.add_argument("--objectives", default=None, metavar="LIST",
                   help="accuracy (CMA-ES) or e.g. accuracy,params,synops (NSGA-II, needs pymoo)")
    p.add_argument("--search", default=None, metavar="NAME",
                   help=f"search algorithm: {', '.join(SEARCHES.names())} (default: cma-es for "
                        f"one objective, nsga-ii for several)")
    p.add_argument("--no-spatial", action="store_true", help="switch the spatial entropy off")
    p.add_argument("--no-temporal", action="store_true",
                   help="switch the temporal difference off")
    p.add_argument("--model-arg", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument, value in YAML; repeatable")
    p.add_argument("--config", metavar="FILE.yaml",
                   help="YAML train config (as for spikesculpt train); flags override it")
    p.add_argument("--out", metavar="DIR", help="evolution directory (default: RUNS_ROOT/evolve-"
                                                "<model>-<dataset>-<hash>)")
    p.add_argument("--runs-root", default=DEFAULT_RUNS_ROOT, help="where directories go")
    p.add_argument("--resume", action="store_true", help="continue an interrupted evolution")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def configs_from_args(args: argparse.Namespace) -> tuple[TrainConfig, EvolutionConfig]:
    config = TrainConfig(method="genetic")
    if args.config:
        overlay(config, read_yaml_config(args.config), args.config)
    config.method = "genetic"
    flags = {key: getattr(args, flag[2:].replace("-", "_"))
             for flag, (key, _, _) in TRAIN_FLAGS.items() if flag not in SKIP}
    neuron = {key: getattr(args, flag[2:].replace("-", "_"))
              for flag, (key, _, _) in NEURON_FLAGS.items()}
    overlay(config, {k: v for k, v in flags.items() if v is not None}, "command line")
    overlay(config.neuron, {k: v for k, v in neuron.items() if v is not None}, "command line")
    overlay(config.genetic, genetic_overrides(args), "command line")
    if args.model_arg:
        config.model_kwargs = {**config.model_kwargs, **dict(args.model_arg)}
    evo = EvolutionConfig()
    values = {key: getattr(args, flag[2:].replace("-", "_"))
              for flag, (key, _, _) in EVOLVE_FLAGS.items()}
    if args.objectives is not None:
        values["objectives"] = [o.strip() for o in args.objectives.split(",") if o.strip()]
    if args.search is not None:
        values["search"] = args.search
    if args.no_spatial:
        values["spatial"] = False
    if args.no_temporal:
        values["temporal"] = False
    overlay(evo, {k: v for k, v in values.items() if v is not None}, "command line")
    return config.validate(), evo.validate()


def run(args: argparse.Namespace) -> int:

    config, evo = configs_from_args(args)
    result = run_evolution(config, evo, out=args.out, runs_root=args.runs_root,
                           resume=args.resume, progress=not args.no_progress)
    s = result.summary
    if result.status == "already-finished":
        print(f"already finished: results in {result.path} (nothing to do)")
    best, final = s["best"], s["final"]
    print(f"evolved {config.model} on {config.dataset} ({s['search']['algorithm']}, "
          f"{len(s['generations'])} generations x {evo.population}): best rule from generation "
          f"{best['generation']}, val accuracy {100 * best['accuracy']:.2f}% after "
          f"{evo.eval_epochs} epoch(s) | final: test accuracy {100 * final['test_accuracy']:.2f}%"
          f" | gene dim {final['gene_dim']} | compression {100 * final['compression']:.1f}% | "
          f"{result.path}")
    return 0
