"""``spikesculpt train``: train one model; outputs go to a run directory named by the config hash."""

from __future__ import annotations

import argparse

from spikesculpt.cli.flags import Flag, add_flags, declared_flags, flags_given, given_values
from spikesculpt.cli.launch import add_nproc_flag
from spikesculpt.cli.parser import key_value, read_yaml_config
from spikesculpt.config import TrainConfig, overlay
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import DEFAULT_RUNS_ROOT
from spikesculpt.experiments.train_run import run_training
from spikesculpt.methods import METHODS
from spikesculpt.methods.tickets.patch import check_patch_keep_option


def config_flags() -> list[Flag]:
    """The flags that overlay a ``TrainConfig``, derived from the declarations of its fields and
    of its sections (``neurons/options.py``, ``methods/dynamic/options.py``,
    ``methods/genetic/options.py``): names, types, help and defaults are never copied here."""
    return declared_flags(TrainConfig)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model", description=__doc__)
    add_config_flags(p)
    p.add_argument("--out", metavar="DIR", help="run directory (default: RUNS_ROOT/<name>-<hash>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    add_nproc_flag(p)
    p.set_defaults(func=run)


def add_config_flags(p, flags: list[Flag] | None = None, runs_root: bool = True) -> None:
    """The flags that overlay a ``TrainConfig`` (``flags``, default all of ``config_flags()``;
    ``compare`` and ``lottery`` leave some out) and the command-line-only ones (``runs_root``:
    with ``--runs-root``; ``sweep`` puts its runs in its own folder)."""
    add_flags(p, config_flags() if flags is None else flags)
    p.add_argument("--patch-keep", type=float, default=None, metavar="FRACTION",
                   help="models with tokens (spikformer): fraction of tokens kept per sample, "
                        "(0, 1] (patch tickets: the most spikes after the patch embedding)")
    add_source_flags(p)
    if runs_root:
        p.add_argument("--runs-root", default=DEFAULT_RUNS_ROOT, help="where run directories go")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_source_flags(p, config_help: str = "YAML config; flags override it") -> None:
    """``--model-arg`` and ``--config``: where a config comes from besides its flags."""
    p.add_argument("--model-arg", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument, value in YAML (e.g. hidden=[128,128]); repeatable")
    p.add_argument("--config", metavar="FILE.yaml", help=config_help)


def overlay_args(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """``config`` overlaid with the ``--config`` YAML file, then the config flags given, then
    ``--model-arg`` (in place)."""
    if args.config:
        overlay(config, read_yaml_config(args.config), args.config)
    overlay(config, given_values(args, config_flags()), "command line")
    if args.model_arg:
        config.model_kwargs = {**config.model_kwargs, **dict(args.model_arg)}
    return config


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = overlay_args(TrainConfig(), args)
    if getattr(args, "patch_keep", None) is not None:
        config.model_kwargs = {**config.model_kwargs, "patch_keep": args.patch_keep}
    check_patch_keep_option(config.model, config.model_kwargs)
    return config.validate()


def method_flags_given(args: argparse.Namespace, also_read: tuple[str, ...] = ()) -> dict:
    """``{config section: [flags given]}`` for the method-option flags on the command line
    (``--density``... for ``sparse``, ``--gene-dim``... for ``genetic``), leaving out the flags
    of the fields named in ``also_read`` (read by the command itself, e.g. the lottery's
    ``dense_first``)."""
    sections = TrainConfig.option_sections()
    flags = [f for f in config_flags() if f.section and f.section[0] in sections
             and f.field not in also_read]
    return {s: flags_given(args, [f for f in flags if f.section[0] == s]) for s in sections}


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
