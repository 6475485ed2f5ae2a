"""Evolve cells of a sweep: one evolution of the initial wiring rule per seed (× varied values),
and its row.

    spikesculpt sweep --methods genetic --seeds 3 --evolve --population 8 --generations 5 \\
        --eval-epochs 1 --search cma-es

An evolution is an ordinary ``spikesculpt evolve`` run directory (``run_evolution``,
``experiments/evolution/``) in the sweep's ``runs/`` folder (``evolve-<model>-<dataset>-<hash>``),
run as one task of the sweep's executor (``EvolveTask``). It follows the evolution's own rules
with ``resume=True``: a finished one is read back (``reused``), an interrupted one continues from
its last finished generation and its final training from its last epoch (``resumed``), a new one
runs (``trained``); one whose lock another process holds comes back ``busy`` and is tried again
after the others.

Parallelism: the sweep's ``--workers`` runs evolutions (and cells) at once, each worker with its
share of the cores; an evolution itself evaluates its population in the worker's process
(``EvolutionConfig.workers`` = 1: no process pool of its own inside a sweep worker; ``batched``
stacking runs on the worker's threads).

Row (``evolve_row``; the row contract of issue 13): one per evolution, ``method`` = "genetic",
``role`` = "evolved", ``density_target`` empty, ``run_dir`` = ``<evolution>/final`` (the full
training of the best rule, an ordinary run directory); the metric columns come from its
``metrics.json``. A failed evolution gives a row with status ``failed`` and its error, ``run_dir``
the evolution's folder. The varied fields an evolution reads are those the ``genetic`` method
reads (common fields and ``genetic.*``); ``--densities`` do not apply.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from spikesculpt.config import TrainConfig, overlay
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.evolution.evolution import FINAL, default_path, run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.lottery.store import read_json
from spikesculpt.experiments.sweep.cell_run import (
    CellOutcome,
    epochs_in_history,
    guarded,
    metric_values,
    relative_to,
)
from spikesculpt.experiments.sweep.grid import SweepGrid, _reads, varied_config

METHOD, ROLE = "genetic", "evolved"
EVOLVE_STATUS = {"evolved": "trained", "resumed": "resumed", "already-finished": "reused"}
# EvolutionConfig fields the sweep sets itself: an evolution runs inside one sweep worker
SET_BY_SWEEP = {"workers": "the sweep's --workers runs evolutions at once; each evaluates its "
                           "population in its own worker"}


@dataclass
class EvolveCell:
    """One evolution of the grid: its place (seed, varied values), its configs and the name of
    its directory under the sweep's ``runs/``."""

    seed: int
    varied: dict
    train: TrainConfig
    evolution: EvolutionConfig
    name: str


@dataclass
class EvolveTask:
    """What a worker needs to run one evolution (picklable: plain dataclasses)."""

    train: TrainConfig
    evolution: EvolutionConfig
    path: str
    progress: bool = False

    def run(self) -> CellOutcome:
        return run_evolve_cell(self)


def evolution_config(options) -> EvolutionConfig:
    """The validated ``EvolutionConfig`` of the grid's ``evolve_options`` (workers = 1)."""
    if not isinstance(options, dict):
        raise UserError(f"evolve_options must be a mapping {{option: value}}, got "
                        f"{type(options).__name__}; e.g. evolve_options: {{population: 8}}")
    for key, why in SET_BY_SWEEP.items():
        if key in options:
            raise UserError(f"evolve option {key!r} is set by the sweep ({why}); drop it")
    config = overlay(EvolutionConfig(), dict(options), "the sweep's evolve_options")
    config.workers = 1
    return config.validate()


def check_evolve(grid: SweepGrid) -> None:
    """One-line ``UserError`` for the grid's evolve part (options without evolve cells, bad
    options)."""
    if not isinstance(grid.evolve, bool):
        raise UserError(f"evolve must be true, false or a mapping of options, got "
                        f"{grid.evolve!r}; e.g. evolve: {{population: 8, generations: 5}}")
    if grid.evolve_options and not grid.evolve:
        key = next(iter(grid.evolve_options), "")
        raise UserError(f"the evolve option {key!r} is given but the sweep has no evolve cells; "
                        f"add --evolve (evolve: true) or drop it")
    if grid.evolve:
        evolution_config(grid.evolve_options)


def evolve_cells(grid: SweepGrid, base: TrainConfig) -> list[EvolveCell]:
    """The grid's evolutions, in order: varied values, then seeds; each checked before anything
    runs; duplicates (same directory) dropped."""
    check_evolve(grid)
    if not grid.evolve:
        return []
    evolution = evolution_config(grid.evolve_options)
    keys = [k for k in grid.vary if _reads(METHOD, k)]
    cells, seen = [], set()
    for values in itertools.product(*(grid.vary[k] for k in keys)):
        varied = dict(zip(keys, values))
        for seed in grid.seed_list():
            train = varied_config(base, seed, varied, METHOD).validate()
            name = default_path(train, evolution, ".").name
            if name not in seen:
                seen.add(name)
                cells.append(EvolveCell(seed, varied, train, evolution, name))
    return cells


def run_evolve_cell(task: EvolveTask) -> CellOutcome:
    """Run (or reuse, or resume) one evolution; its status as a cell's (see the module doc)."""
    return guarded(task.path, lambda: run_evolution(task.train, task.evolution, out=task.path,
                                                    resume=True, progress=task.progress),
                   lambda result: CellOutcome(EVOLVE_STATUS[result.status], str(result.path)))


def evolve_row(cell: EvolveCell, outcome: CellOutcome, evolution: Path, sweep_path: Path,
               vary_keys: list) -> dict:
    """The row of the evolution in folder ``evolution`` (module doc); ``run_dir`` relative to
    ``sweep_path``."""
    final = evolution / FINAL if outcome.status != "failed" else None
    metrics = read_json(final / "metrics.json") if final is not None else {}
    run_dir = relative_to(final or evolution, sweep_path)
    return {"method": METHOD, "role": ROLE, "density_target": None, "seed": cell.seed,
            **{k: cell.varied.get(k) for k in vary_keys}, "run_dir": run_dir,
            "status": outcome.status, **metric_values(metrics),
            "epochs_run": epochs_in_history(final / "history.csv") if final else None,
            "error": outcome.error}
