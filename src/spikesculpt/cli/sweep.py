"""``spikesculpt sweep``: train a grid of methods × densities × seeds (× other train options).

    spikesculpt sweep --methods dense,static,set,rigl,esl --densities 0.5,0.2,0.1 --seeds 5 \\
        --epochs 30 --workers 2 --out sweeps/digits
    spikesculpt sweep --grid grid.yaml --epochs 30 --out sweeps/digits
    spikesculpt sweep --methods dense,esl --densities 0.25 --seeds 3 \\
        --lottery imp --rounds 2 --rate 0.5 --controls reinit,random
    spikesculpt sweep --methods genetic --seeds 3 --evolve --population 8 --generations 5

Each cell is an ordinary run directory under OUT/runs/ (finished cells are reused, interrupted
ones resume); methods that take no density (dense) get one cell per seed; ``--controls
matched-dense`` adds, per density, a dense cell narrowed to the same connections. Every
``train`` flag sets the base config shared by all cells. ``--seeds N`` runs seeds 0..N-1; a
comma list (``--seeds 0,3,7``, or ``--seeds 7,`` for seed 7 alone) runs exactly those seeds.
``--lottery imp`` adds one ticket search per strategy × seed (``spikesculpt lottery``'s flags
--rounds, --rate, --rewind, --controls, ...; --densities do not apply to it), one row per level
and control. ``--evolve`` adds one evolution of the genetic wiring rule per seed (``spikesculpt
evolve``'s flags --population, --generations, --eval-epochs, --search, ...; not its --workers),
one row per evolution: its final training, ``genetic (evolved)``. At the end: OUT/cells.csv
and OUT/cells.json (one row per cell), a table of test accuracy (mean ± std over seeds), and
OUT/report.md + OUT/report.html (``spikesculpt report``; skip with --no-report), whose path is
the last line printed; exit status 1 if a cell failed.
docs/sweep.md has the rules, docs/report.md the report.
"""

from __future__ import annotations

import argparse
import sys

from spikesculpt.cli.backend import backend_flags, backend_from_args
from spikesculpt.cli.evolve import evolve_flags
from spikesculpt.cli.flags import add_flags, flags_given, given_values, without
from spikesculpt.cli.lottery import SHARED_WITH_TRAIN, lottery_flags
from spikesculpt.cli.parser import key_value, read_yaml_config
from spikesculpt.cli.train import (
    add_config_flags,
    check_method_flags,
    config_flags,
    config_from_args,
    method_flags_given,
)
from spikesculpt.core.errors import UserError
from spikesculpt.core.options import comma_list, positive_int
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.sweep import (
    SweepGrid,
    format_table,
    run_grid,
    summarize,
)
from spikesculpt.experiments.sweep.controls import CONTROLS
from spikesculpt.experiments.sweep.executor import close_executor, make_executor
from spikesculpt.experiments.sweep.provenance import cli_command


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="train a grid: methods × densities × seeds",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", metavar="LIST",
                   help="comma-separated methods (spikesculpt list methods); default dense,esl")
    p.add_argument("--densities", metavar="LIST",
                   help="comma-separated densities in (0, 1] for the methods that take one "
                        "(default: the --config file's density, else 0.1)")
    p.add_argument("--seeds", metavar="N|LIST",
                   help="a count N (seeds 0..N-1) or a comma list of seeds (0,3,7; 7, for seed "
                        "7 alone); default 1")
    p.add_argument("--vary", type=key_value, action="append", default=[], metavar="FIELD=[V,..]",
                   help="vary another config field over a YAML list (lr=[1e-3,3e-3], "
                        "neuron.tau=[2,4]); repeatable")
    p.add_argument("--grid", metavar="FILE.yaml",
                   help="YAML grid: methods, densities, seeds, vary {field: [values]}, controls, "
                        "lottery, lottery_options; the flags override its keys")
    p.add_argument("--lottery", metavar="LIST",
                   help="comma-separated ticket-search strategies (imp, early-bird, score): one "
                        "search per strategy × seed, one row per level and control; set by the "
                        "lottery flags below")
    add_flags(p, sweep_lottery_flags())
    p.add_argument("--evolve", action="store_true",
                   help="add one evolution of the genetic wiring rule per seed (spikesculpt "
                        "evolve), one row each (its final training); set by the evolve flags "
                        "below")
    add_flags(p, sweep_evolve_flags())
    p.add_argument("--controls", metavar="LIST",
                   help="comma-separated controls: matched-dense (per density, a dense model "
                        "narrowed to the connections the sparse cells keep); reinit,random "
                        "(lottery cells: random re-initialisation, random pruning)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="cells trained at once, each in its own process (default 1: in this "
                        "process); --backend ray without --address: the local Ray instance's "
                        "CPUs")
    add_flags(p, backend_flags())
    p.add_argument("--out", metavar="DIR",
                   help="sweep directory (default sweeps/<model>-<dataset>-<sweep hash>)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write OUT/report.md and OUT/report.html at the end (spikesculpt "
                        "report OUT writes them later)")
    p.add_argument("--force", action="store_true",
                   help="replace the grid of an existing sweep directory (its finished cells "
                        "are kept and reused)")
    add_config_flags(p, without(config_flags(), ["--method", "--density", "--seed"]),
                     runs_root=False)  # the cells go to OUT/runs/
    p.set_defaults(func=run)


def sweep_lottery_flags():
    """``spikesculpt lottery``'s flags less ``--strategy`` (the sweep's ``--lottery`` list) and
    ``--controls`` (the sweep's own: ``lottery_controls``)."""
    return without(lottery_flags(), ["--strategy", "--controls"])


def sweep_evolve_flags():
    """``spikesculpt evolve``'s own flags less ``--workers`` (the sweep's: an evolution runs in
    one sweep worker)."""
    return without(evolve_flags(), ["--workers"])


def split_controls(text: str) -> tuple[list[str], list[str]]:
    """``--controls``' names split into the sweep's control cells (matched-dense) and the
    lottery controls (reinit, random); any other name is an error (one line)."""
    names = comma_list(text)
    for name in names:
        if name not in (*CONTROLS, *LotteryConfig.CONTROLS):
            raise UserError(f"unknown control {name!r}; choose from: "
                            f"{', '.join((*CONTROLS, *LotteryConfig.CONTROLS))} "
                            f"(e.g. --controls matched-dense or --controls reinit,random)")
    return ([n for n in names if n in CONTROLS],
            [n for n in names if n in LotteryConfig.CONTROLS])


def grid_from_args(args: argparse.Namespace) -> SweepGrid:
    """The grid: the ``--grid`` file (if any) with the flags given on top."""
    grid = SweepGrid(methods=None)
    if args.grid:
        grid = SweepGrid.from_mapping(read_yaml_config(args.grid), args.grid)
    if args.methods is not None:
        grid.methods = comma_list(args.methods)
        if not grid.methods:
            raise UserError(f"--methods names no method ({args.methods!r}); pass e.g. "
                            f"--methods dense,esl (spikesculpt list methods)")
    if args.lottery is not None:
        grid.lottery = comma_list(args.lottery)
        if not grid.lottery:
            raise UserError(f"--lottery names no strategy ({args.lottery!r}); pass e.g. "
                            f"--lottery imp (spikesculpt list strategies)")
    grid.lottery_options.update(given_values(args, sweep_lottery_flags()))
    cell_controls, ticket_controls = split_controls(args.controls or "")
    if ticket_controls:
        grid.lottery_options["controls"] = ticket_controls
    if grid.lottery_options and not grid.lottery:
        given = flags_given(args, sweep_lottery_flags()) + ["--controls"] * bool(ticket_controls)
        flag = (given or ["lottery_options"])[0]
        raise UserError(f"{flag} is an option of lottery cells, and this sweep has none; add "
                        f"--lottery imp (or drop {flag})")
    evolve_from_args(args, grid)
    if grid.methods is None:
        grid.methods = [] if grid.lottery or grid.evolve else ["dense", "esl"]
    if args.densities is not None:
        grid.densities = comma_list(args.densities)
        if not grid.densities:
            raise UserError(f"--densities names no density ({args.densities!r}); pass e.g. "
                            f"--densities 0.5,0.1")
    if args.seeds is not None:
        grid.seeds = parse_seeds(args.seeds)
    for key, values in args.vary:
        grid.vary[key] = values
    if cell_controls:
        grid.controls = cell_controls
    return grid.validate()


def evolve_from_args(args: argparse.Namespace, grid: SweepGrid) -> None:
    """``--evolve`` and the evolve flags on top of the grid file's evolve keys; an evolve flag
    without evolve cells is a one-line ``UserError``."""
    if args.evolve:
        grid.evolve = True
    grid.evolve_options.update(given_values(args, sweep_evolve_flags()))
    given = flags_given(args, sweep_evolve_flags())
    if given and not grid.evolve:
        raise UserError(f"{given[0]} is an option of evolve cells, and this sweep has none; add "
                        f"--evolve (or drop {given[0]})")


def parse_seeds(text: str):
    """``"5"`` -> 5 (a count: seeds 0..4); ``"0,3,7"`` / ``"7,"`` -> a list of seeds."""
    parts = comma_list(text)
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--seeds {text!r} is not a count or a list of integers; pass e.g. "
                        f"--seeds 5 (seeds 0..4) or --seeds 0,3,7") from None
    if "," in text:
        return values
    if len(values) != 1:
        raise UserError(f"--seeds {text!r} is empty; pass e.g. --seeds 5 (seeds 0..4)")
    return values[0]


def run(args: argparse.Namespace) -> int:
    if args.grid and args.config and args.grid == args.config:
        raise UserError(f"{args.grid} is given as both --grid and --config; the grid file holds "
                        f"methods/densities/seeds/vary, the config file the base config")
    grid = grid_from_args(args)
    base = config_from_args(args)
    check_method_flags(grid.methods + grid.lottery + ["genetic"] * grid.evolve,
                       method_flags_given(args, SHARED_WITH_TRAIN if grid.lottery else ()))
    progress = not args.no_progress
    executor = make_executor(backend_from_args(args), args.workers, base.device)
    try:
        result = run_grid(base, grid, out=args.out, executor=executor,
                          force=args.force, progress=progress, report=not args.no_report,
                          command=cli_command(getattr(args, "argv", None) or sys.argv[1:]))
    except KeyboardInterrupt:
        print("spikesculpt: interrupted; finished cells and every finished epoch are saved — "
              "run the same command again to continue", file=sys.stderr)
        return 130
    finally:
        close_executor(executor)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts.items())
    print(f"\n{base.model} on {base.dataset}, {base.epochs} epochs, T={base.timesteps}: "
          f"{len(result.rows)} cells ({counts}); test accuracy of the best-validation model")
    print(format_table(summarize(result.rows, result.vary_keys), result.vary_keys))
    print(f"cells: {result.cells_csv}")
    if result.failed:
        for row in result.failed:
            print(f"spikesculpt: failed cell {row['method']} density {row['density_target']} "
                  f"seed {row['seed']} ({row['run_dir']}): {row['error']}", file=sys.stderr)
        print(f"spikesculpt: {len(result.failed)} of {len(result.rows)} cells failed; fix the "
              f"cause and run the same command again (finished cells are reused)",
              file=sys.stderr)
    if result.report is not None:
        print(f"report: {result.report.html}")
    return 1 if result.failed else 0
