"""``spikesculpt evolve``: evolve the initial wiring rule of a gene-encoded network, train the best.

Network, data and training flags are those of ``spikesculpt train`` (``--epochs`` is the final
training; the short training of every candidate takes ``--eval-epochs``). ``--backend ray``
scores every candidate of a generation as a Ray task (``--address``: a cluster; none: a local
Ray instance with ``--workers`` CPUs; docs/ray.md). See docs/genetic.md.
"""

from __future__ import annotations

import argparse

from spikesculpt.cli.backend import backend_flags, backend_from_args
from spikesculpt.cli.flags import Flag, add_flags, declared_flags, given_values, without
from spikesculpt.cli.train import add_source_flags, config_flags, overlay_args
from spikesculpt.config import TrainConfig, overlay
from spikesculpt.core.options import comma_list
from spikesculpt.experiments.backend import RayCluster
from spikesculpt.experiments.evolution.evolution import run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.evolution.population import check_cluster_mode
from spikesculpt.experiments.evolution.search import SEARCHES
from spikesculpt.experiments.rundir import DEFAULT_RUNS_ROOT

# The declarations of EvolutionConfig's flags, kept here until
# experiments/evolution/options.py declares its fields itself (``core.options.option``; a
# declaration there wins over this one, and then this entry can go; see docs/architecture.md).
EVOLVE_OPTIONS = {
    "population": {"help": "candidates per generation (>= 2)"},
    "generations": {"help": "generations (> 0)"},
    "eval_epochs": {"help": "epochs of the short training scoring a candidate"},
    "sigma0": {"help": "CMA-ES initial step size (x each gene's scale)"},
    "lambda_spatial": {"help": "initial weight of the spatial entropy of O"},
    "lambda_temporal": {"help": "initial weight of the temporal difference of the encodings"},
    "min_gene_dim": {"help": "several objectives: smallest gene dim searched"},
    "batched": {"help": "population evaluation: auto | stack | vmap | off"},
    "workers": {"help": "processes for one-at-a-time evaluation (--backend ray without "
                        "--address: the local Ray instance's CPUs)"},
    "objectives": {"help": "accuracy (CMA-ES) or e.g. accuracy,params,synops (NSGA-II, needs "
                           "pymoo)", "parse": comma_list, "metavar": "LIST"},
    "search": {"help": "search algorithm", "choices": SEARCHES.names, "kind": "search",
               "none_means": "cma-es for one objective, nsga-ii for several", "metavar": "NAME"},
    "spatial": {"help": "switch the spatial entropy off"},
    "temporal": {"help": "switch the temporal difference off"},
}
# The train flags evolve does not take: the method is genetic, and neither the sparse options
# nor the reset switches, AMP or downloads were ever part of it.
NOT_TAKEN = ("--method", "--soft-reset", "--detach-reset", "--amp", "--download")


def evolve_flags() -> list[Flag]:
    return declared_flags(EvolutionConfig, extra=EVOLVE_OPTIONS)


def train_flags() -> list[Flag]:
    return without(config_flags(), NOT_TAKEN, sections=["sparse"])


def add_parser(sub) -> None:
    p = sub.add_parser("evolve", help="evolve the initial wiring rule (genetic encoding)",
                       description=__doc__)
    add_flags(p, train_flags())
    add_flags(p, evolve_flags())
    add_flags(p, backend_flags())
    add_source_flags(p, "YAML train config (as for spikesculpt train); flags override it")
    p.add_argument("--out", metavar="DIR", help="evolution directory (default: RUNS_ROOT/evolve-"
                                                "<model>-<dataset>-<hash>)")
    p.add_argument("--runs-root", default=DEFAULT_RUNS_ROOT, help="where directories go")
    p.add_argument("--resume", action="store_true", help="continue an interrupted evolution")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def configs_from_args(args: argparse.Namespace) -> tuple[TrainConfig, EvolutionConfig]:
    config = overlay_args(TrainConfig(method="genetic"), args)
    config.method = "genetic"
    evo = overlay(EvolutionConfig(), given_values(args, evolve_flags()), "command line")
    return config.validate(), evo.validate()


def run(args: argparse.Namespace) -> int:
    config, evo = configs_from_args(args)
    backend = backend_from_args(args)
    check_cluster_mode(evo.batched, backend.backend == "ray")
    cluster = RayCluster.connect(backend, evo.workers) if backend.backend == "ray" else None
    try:
        result = run_evolution(config, evo, out=args.out, runs_root=args.runs_root,
                               resume=args.resume, progress=not args.no_progress,
                               cluster=cluster)
    finally:
        if cluster is not None:
            cluster.close()
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
