"""``spikesculpt train``: train one model; outputs go to a run directory named by the config hash."""

from __future__ import annotations

import argparse

from spikesculpt.cli.parser import key_value, positive_int, read_yaml_config
from spikesculpt.config import (
    GeneticConfig,
    NeuronConfig,
    SparseConfig,
    TicketConfig,
    TrainConfig,
    overlay,
)
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import DEFAULT_RUNS_ROOT
from spikesculpt.experiments.train_run import run_training
from spikesculpt.methods import METHODS
from spikesculpt.methods.genetic.genome import read_genome_file
from spikesculpt.methods.tickets.options import MASK_HELP
from spikesculpt.methods.tickets.patch import check_patch_keep_option
from spikesculpt.neurons import NEURONS, SURROGATES

# flag -> (config key, type); flags default to None so that only given flags overlay the config.
TRAIN_FLAGS = {
    "--dataset": ("dataset", str, "digits, npz:PATH, ... (spikesculpt list)"),
    "--model": ("model", str, "mlp, conv, vggsnn, ... (spikesculpt list)"),
    "--method": ("method", str, "{methods}"),
    "--epochs": ("epochs", positive_int, "training epochs"),
    "--timesteps": ("timesteps", positive_int, "simulation time steps T"),
    "--batch-size": ("batch_size", positive_int, "batch size"),
    "--lr": ("lr", float, "learning rate"),
    "--optimizer": ("optimizer", str, "sgd | adam | adamw"),
    "--momentum": ("momentum", float, "SGD momentum"),
    "--weight-decay": ("weight_decay", float, "weight decay"),
    "--schedule": ("schedule", str, "cosine | constant"),
    "--loss": ("loss", str, "ce (time-averaged output) | tet"),
    "--encoding": ("encoding", str, "direct | poisson | latency (static data)"),
    "--val-fraction": ("val_fraction", float, "fraction of train held out for validation"),
    "--seed": ("seed", int, "random seed"),
    "--device": ("device", str, "auto | cpu | cuda | cuda:N"),
    "--data-root": ("data_root", str, "folder with downloaded datasets"),
    "--augment": ("augment", str, "training-batch augmentation: none | standard (flip+shift) | "
                  "flip, shift, cutout joined with +"),
    "--init-firing": ("init_firing", float, "dense and sparse methods: before training, scale up "
                      "the Linear/Conv layers whose neurons fire below this rate (0 = off)"),
}
SPARSE_FLAGS = {
    "--density": ("density", float, "sparse methods: fraction of connections kept, in (0, 1]"),
    "--init": ("init", str, "layer densities: uniform | er | erk"),
    "--grow": ("grow", str, "regrowth: random | gradient | hebbian"),
    "--update-every": ("update_every", positive_int, "optimizer steps between mask updates"),
    "--drop-fraction": ("drop_fraction", float, "fraction rewired at the first update, [0, 1)"),
    "--update-until": ("update_until", float, "mask updates stop at this fraction of training"),
}
GENETIC_FLAGS = {
    "--gene-dim": ("gene_dim", int, "genetic: gene dimension g (O is g x g), > 0"),
    "--gene-init-std": ("init_std", float, "genetic: std of the initial genes and O"),
}
TICKET_FLAGS = {
    "--mask": ("mask", str, f"ticket: {MASK_HELP}"),
}
NEURON_FLAGS = {
    "--neuron": ("name", str, "{neurons}"),
    "--tau": ("tau", float, "membrane time constant (plif: initial value)"),
    "--v-threshold": ("v_threshold", float, "firing threshold"),
    "--v-reset": ("v_reset", float, "hard-reset potential (see --soft-reset)"),
    "--surrogate": ("surrogate", str, "{surrogates}"),
    "--surrogate-alpha": ("alpha", float, "surrogate width parameter"),
}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model", description=__doc__)
    add_config_flags(p)
    p.add_argument("--out", metavar="DIR", help="run directory (default: RUNS_ROOT/<name>-<hash>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.set_defaults(func=run)


def flag_help(flag: str, key: str, text: str) -> str:
    """``text`` with the registered names filled in (``{methods}``, ``{neurons}``,
    ``{surrogates}``) and the default read from the config dataclasses, never copied by hand."""

    text = text.format(methods=" | ".join(METHODS.names()),
                       neurons=" | ".join(NEURONS.names()),
                       surrogates=" | ".join(SURROGATES.names()))
    if flag in NEURON_FLAGS:
        default = getattr(NeuronConfig(), key)
    elif flag in SPARSE_FLAGS:
        default = getattr(SparseConfig(), key)
    elif flag in GENETIC_FLAGS:
        default = getattr(GeneticConfig(), key)
    elif flag in TICKET_FLAGS:
        default = getattr(TicketConfig(), key)
    else:
        default = getattr(TrainConfig(), key)
    if default is None:
        default = {"--surrogate-alpha": "the surrogate's own", "--data-root": "none",
                   "--mask": "none"}.get(
            flag, "the method's own")
    return f"{text} (default: {default})"


def add_config_flags(p, method_flag: bool = True, sparse_flags: bool = True) -> None:
    """The flags that overlay a ``TrainConfig`` (shared by ``train``, ``compare`` and
    ``lottery``; the last has no ``--method`` and no sparse-method options)."""
    flags = {**TRAIN_FLAGS, **(SPARSE_FLAGS if sparse_flags else {}),
             **(TICKET_FLAGS if sparse_flags else {}), **NEURON_FLAGS}
    for flag, (key, typ, text) in flags.items():
        if flag == "--method" and not method_flag:
            continue
        p.add_argument(flag, type=typ, default=None, help=flag_help(flag, key, text))
    add_genetic_arguments(p)
    p.add_argument("--dense-first", action="store_true", default=None,
                   help="sparse methods, lottery: keep the first prunable layer dense")
    p.add_argument("--dense-last", action="store_true", default=None,
                   help="sparse methods, lottery: keep the last prunable layer (readout) dense")
    p.add_argument("--soft-reset", action="store_true", default=None,
                   help="reset by subtracting the threshold instead of to v_reset")
    p.add_argument("--detach-reset", action="store_true", default=None,
                   help="no gradient through the reset")
    p.add_argument("--amp", action="store_true", default=None, help="mixed precision (CUDA)")
    p.add_argument("--download", action="store_true", default=None,
                   help="fetch missing torchvision datasets (mnist, cifar10, ...) into --data-root")
    p.add_argument("--patch-keep", type=float, default=None, metavar="FRACTION",
                   help="models with tokens (spikformer): fraction of tokens kept per sample, "
                        "(0, 1] (patch tickets: the most spikes after the patch embedding)")
    p.add_argument("--model-arg", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument, value in YAML (e.g. hidden=[128,128]); repeatable")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML config; flags override it")
    p.add_argument("--runs-root", default=DEFAULT_RUNS_ROOT, help="where run directories go")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = TrainConfig()
    if args.config:
        overlay(config, read_yaml_config(args.config), args.config)
    flags = {key: getattr(args, flag[2:].replace("-", "_"), None)
             for flag, (key, _, _) in TRAIN_FLAGS.items()}
    neuron = {key: getattr(args, flag[2:].replace("-", "_"))
              for flag, (key, _, _) in NEURON_FLAGS.items()}
    if args.soft_reset:
        neuron["v_reset"] = None
    if args.detach_reset:
        neuron["detach_reset"] = True
    if args.amp:
        flags["amp"] = True
    if args.download:
        flags["download"] = True
    overlay(config, {k: v for k, v in flags.items() if v is not None}, "command line")
    overlay(config.neuron, {k: v for k, v in neuron.items()
                            if v is not None or (k == "v_reset" and args.soft_reset)},
            "command line")
    sparse = {key: getattr(args, flag[2:].replace("-", "_"), None)
              for flag, (key, _, _) in SPARSE_FLAGS.items()}
    sparse["dense_first"], sparse["dense_last"] = args.dense_first, args.dense_last
    overlay(config.sparse, {k: v for k, v in sparse.items() if v is not None}, "command line")
    overlay(config.genetic, genetic_overrides(args), "command line")
    ticket = {key: getattr(args, flag[2:].replace("-", "_"), None)
              for flag, (key, _, _) in TICKET_FLAGS.items()}
    overlay(config.ticket, {k: v for k, v in ticket.items() if v is not None}, "command line")
    if args.model_arg:
        config.model_kwargs = {**config.model_kwargs, **dict(args.model_arg)}
    if getattr(args, "patch_keep", None) is not None:
        config.model_kwargs = {**config.model_kwargs, "patch_keep": args.patch_keep}

    check_patch_keep_option(config.model, config.model_kwargs)
    return config.validate()


def add_genetic_arguments(p) -> None:
    for flag, (key, typ, text) in GENETIC_FLAGS.items():
        p.add_argument(flag, type=typ, default=None, help=flag_help(flag, key, text))
    p.add_argument("--keep-first", action="store_true", default=None,
                   help="genetic: leave the first connection layer plain (not encoded)")
    p.add_argument("--keep-last", action="store_true", default=None,
                   help="genetic: leave the last connection layer (readout) plain")
    p.add_argument("--genome", metavar="FILE.json", default=None,
                   help="genetic: start from an evolved initial wiring rule (evolution.json "
                        "of 'spikesculpt evolve', or a genome JSON)")


def genetic_overrides(args: argparse.Namespace) -> dict:
    """The genetic section's values given on the command line (None = not given)."""
    values = {key: getattr(args, flag[2:].replace("-", "_"))
              for flag, (key, _, _) in GENETIC_FLAGS.items()}
    values["keep_first"], values["keep_last"] = args.keep_first, args.keep_last
    if args.genome:

        values["genome"] = read_genome_file(args.genome)
    return {k: v for k, v in values.items() if v is not None}


def method_flags_given(args: argparse.Namespace, dense_flags: bool = True) -> dict:
    """``{config section: [flags given]}`` for the method-option flags on the command line
    (``--density``... for ``sparse``, ``--gene-dim``... for ``genetic``, ``--mask`` for
    ``ticket``)."""
    def given(flags):
        return [f for f in flags if getattr(args, f[2:].replace("-", "_"), None) is not None]

    sparse = given(SPARSE_FLAGS) + (given(("--dense-first", "--dense-last")) if dense_flags else [])
    genetic = given(list(GENETIC_FLAGS) + ["--keep-first", "--keep-last", "--genome"])
    return {"sparse": sparse, "genetic": genetic, "ticket": given(TICKET_FLAGS)}


def check_method_flags(methods: list[str], given: dict) -> None:
    """A method option flag must be read by one of ``methods``: ``--density 0.1`` with the
    default dense method would train dense and call it finished."""

    for section, flags in given.items():
        readers = [m for m in METHODS if getattr(METHODS.get(m), "config_section", None) == section]
        if flags and not any(m in readers for m in methods):
            raise UserError(f"{flags[0]} is an option of the {', '.join(readers)} method"
                            f"{'s' if len(readers) > 1 else ''}, and {'/'.join(methods)} does "
                            f"not read it; add --method {readers[0]} (or drop {flags[0]})")


def run(args: argparse.Namespace) -> int:

    config = config_from_args(args)
    check_method_flags([config.method], method_flags_given(args))
    result = run_training(config, out=args.out, runs_root=args.runs_root, resume=args.resume,
                          progress=not args.no_progress)
    m = result.metrics
    if result.status == "already-finished":
        print(f"already finished: results in {result.run_dir.path} (nothing to do)")
    print(f"{config.model} on {config.dataset} ({config.method}): "
          f"test accuracy {100 * m['test_accuracy']:.2f}% | "
          f"val {100 * m['val_accuracy']:.2f}% | firing rate {m['firing_rate']:.3f} | "
          f"{size_text(m)} | {m['train_seconds']:.1f} s | {result.run_dir.path}")
    return 0


def size_text(m: dict, counts: bool = False) -> str:
    """How big the trained network is: for a gene-encoded one its parameters against the plain
    architecture (its generated connections are all present, so a density says nothing);
    otherwise the density of the prunable weights (``counts``: with nonzero / total)."""
    if "compression" in m:
        return (f"{m['params_total']:,} parameters, {m['params_plain']:,} with plain weights "
                f"(compression {100 * m['compression']:.1f}%)")
    text = f"density {m['density']:.3f}"
    if counts:
        text += f" ({m['nonzero_prunable']}/{m['params_prunable']} prunable weights)"
    return text
