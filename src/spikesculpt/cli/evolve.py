"""``spikesculpt evolve``: evolve the initial wiring rule of a gene-encoded network, train the best.

Network, data and training flags are those of ``spikesculpt train`` (``--epochs`` is the final
training; the short training of every candidate takes ``--eval-epochs``). ``--backend ray``
scores every candidate of a generation as a Ray task (``--address``: a cluster; none: a local
Ray instance with ``--workers`` CPUs; docs/ray.md). ``--search-only`` stops after the search;
``--nproc N`` runs the search here, in one process, then the final training data-parallel in N
processes (``torchrun`` launches of evolve train the final model of a finished search only;
docs/distributed.md). See docs/genetic.md.
"""

from __future__ import annotations

import argparse

from spikesculpt.cli.backend import backend_flags, backend_from_args
from spikesculpt.cli.flags import Flag, add_flags, declared_flags, given_values, without
from spikesculpt.cli.launch import add_nproc_flag, launch, refuse_nested
from spikesculpt.cli.train import add_source_flags, config_flags, overlay_args
from spikesculpt.config import TrainConfig, overlay
from spikesculpt.core.distributed import is_distributed
from spikesculpt.core.errors import UserError
from spikesculpt.core.options import comma_list
from spikesculpt.experiments.backend import BackendOptions, RayCluster
from spikesculpt.experiments.evolution.evolution import EvolutionResult, run_evolution
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
# nor the reset switches, AMP, torch.compile or downloads were ever part of it.
NOT_TAKEN = ("--method", "--soft-reset", "--detach-reset", "--amp", "--compile", "--download")


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
    p.add_argument("--search-only", action="store_true",
                   help="stop after the search (the final training follows with --resume, e.g. "
                        "under torchrun)")
    add_nproc_flag(p, what="final training (the search runs first, in this process)")
    p.set_defaults(func=run, launch=launch_final)


def configs_from_args(args: argparse.Namespace) -> tuple[TrainConfig, EvolutionConfig]:
    config = overlay_args(TrainConfig(method="genetic"), args)
    config.method = "genetic"
    evo = overlay(EvolutionConfig(), given_values(args, evolve_flags()), "command line")
    return config.validate(), evo.validate()


def check_launch_flags(args: argparse.Namespace) -> None:
    """``--search-only`` trains no final model: neither ``--nproc`` nor torchrun has a part."""
    if args.search_only and args.nproc is not None:
        raise UserError("--search-only trains no final model, so --nproc has nothing to run; "
                        "drop one of them")
    if args.search_only and is_distributed():
        raise UserError("--search-only runs the search in one process: launch it without "
                        "torchrun, then the final training with torchrun ... --resume")


def run(args: argparse.Namespace) -> int:
    """The whole evolution; under torchrun / ``--nproc``'s ranks the final training alone."""
    config, evo = configs_from_args(args)
    backend = backend_from_args(args)
    check_cluster_mode(evo.batched, backend.backend == "ray")
    check_launch_flags(args)
    report(evolve(args, config, evo, backend, final=not args.search_only), config, evo)
    return 0


def launch_final(args: argparse.Namespace) -> int:
    """``--nproc N``: the search here (one process, with its ``--backend`` / ``--workers``),
    then the final training on N ranks, which resume the same directory."""
    refuse_nested()
    config, evo = configs_from_args(args)
    backend = backend_from_args(args)
    check_cluster_mode(evo.batched, backend.backend == "ray")
    check_launch_flags(args)
    result = evolve(args, config, evo, backend, final=False)
    if result.status == "already-finished":
        report(result, config, evo)
        return 0
    if not args.no_progress:
        print(f"search finished: the final training on {args.nproc} processes", flush=True)
    return launch(args.argv + ([] if args.resume else ["--resume"]), args.nproc)


def evolve(args: argparse.Namespace, config: TrainConfig, evo: EvolutionConfig,
           backend: BackendOptions, final: bool) -> EvolutionResult:
    """``run_evolution`` with the command line's directory options (a Ray cluster for the
    search where asked; none on the ranks of a distributed final training)."""
    ray = backend.backend == "ray" and not is_distributed()
    cluster = RayCluster.connect(backend, evo.workers) if ray else None
    try:
        return run_evolution(config, evo, out=args.out, runs_root=args.runs_root,
                             resume=args.resume, progress=not args.no_progress,
                             cluster=cluster, final=final)
    finally:
        if cluster is not None:
            cluster.close()


def report(result: EvolutionResult, config: TrainConfig, evo: EvolutionConfig) -> None:
    """The result in one line (what ``spikesculpt evolve`` prints)."""
    s = result.summary
    if result.status == "already-finished":
        print(f"already finished: results in {result.path} (nothing to do)")
    best = s["best"]
    text = (f"evolved {config.model} on {config.dataset} ({s['search']['algorithm']}, "
            f"{len(s['generations'])} generations x {evo.population}): best rule from generation "
            f"{best['generation']}, val accuracy {100 * best['accuracy']:.2f}% after "
            f"{evo.eval_epochs} epoch(s)")
    final = s.get("final")
    if final is None:  # --search-only
        print(f"{text} | final training: the same command with --resume | {result.path}")
        return
    print(f"{text} | final: test accuracy {100 * final['test_accuracy']:.2f}% | gene dim "
          f"{final['gene_dim']} | compression {100 * final['compression']:.1f}% | "
          f"{result.path}")
