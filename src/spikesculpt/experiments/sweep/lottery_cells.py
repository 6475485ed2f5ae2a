"""Lottery cells of a sweep: one ticket search per strategy × seed (× varied values), and its rows.

    spikesculpt sweep --methods dense,static,esl --densities 0.5,0.1 --seeds 3 \\
        --lottery imp --rounds 4 --rate 0.5 --controls reinit,random

A search is an ordinary lottery run directory (``run_lottery``, ``experiments/lottery/``) in the
sweep's ``runs/`` folder (``lottery-<strategy>-<model>-<dataset>-<hash>``), run as one task of
the sweep's executor (``SearchTask``), so ``--workers 2`` runs two searches (or a search and a
cell) at once. It follows the lottery's own rules with ``resume=True``: a finished search is read
back (``reused``), an interrupted one continues from its last finished level or epoch
(``resumed``), a new one runs (``trained``); one whose lock another process holds comes back
``busy`` and is tried again after the others.

Rows (``search_rows``; the row contract of issue 13): one per level K = 0..rounds (``method`` =
the strategy, ``role`` "", ``level`` K, ``density_target`` = the level's target density
(1 - rate)^K, level 0: 1.0, ``run_dir`` = ``<search>/level_K``), then at each level one per
control (``role`` "reinit" / "random", ``run_dir`` = ``<search>/level_K/control_<kind>``); the
metric columns come from that folder's ``metrics.json``. A failed search gives one row (status
``failed``, its error, ``level`` empty). The sweep's ``--densities`` do not apply: a search's
levels come from ``rounds`` and ``rate``. A varied field of a method option section
(``sparse.grow``) is not read by a search; every other varied field is.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from spikesculpt.config import TrainConfig, overlay
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.lottery import STRATEGIES, LotterySearch, run_lottery
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.lottery.store import read_json
from spikesculpt.experiments.sweep.cell_run import (
    CellOutcome,
    epochs_in_history,
    guarded,
    metric_values,
    relative_to,
)
from spikesculpt.experiments.sweep.grid import SweepGrid, varied_config

SEARCH_STATUS = {"searched": "trained", "resumed": "resumed", "already-finished": "reused"}
# LotteryConfig fields the sweep sets itself: the strategy is the grid's ``lottery`` list
NOT_AN_OPTION = ("strategy",)


@dataclass
class LotteryCell:
    """One ticket search of the grid: its place (strategy, seed, varied values), its configs and
    the name of its directory under the sweep's ``runs/``."""

    strategy: str
    seed: int
    varied: dict
    train: TrainConfig
    lottery: LotteryConfig
    name: str


@dataclass
class SearchTask:
    """What a worker needs to run one search (picklable: plain dataclasses)."""

    train: TrainConfig
    lottery: LotteryConfig
    path: str
    progress: bool = False

    def run(self) -> CellOutcome:
        return run_search(self)


def lottery_config(strategy, options: dict, base: TrainConfig) -> LotteryConfig:
    """The validated ``LotteryConfig`` of ``strategy`` with the grid's ``lottery_options``;
    ``dense_first`` / ``dense_last`` default to the base config's (``--dense-first``)."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise UserError(f"unknown lottery strategy {strategy!r}; choose one of: "
                        f"{', '.join(STRATEGIES.names())} (e.g. --lottery imp)")
    if not isinstance(options, dict):
        raise UserError(f"lottery_options must be a mapping {{option: value}}, got "
                        f"{type(options).__name__}; e.g. lottery_options: {{rounds: 4, rate: 0.5}}")
    for key in NOT_AN_OPTION:
        if key in options:
            raise UserError(f"lottery_options: {key} is set by the grid's lottery list; use "
                            f"lottery: [{options[key]}] instead")
    config = LotteryConfig(strategy=strategy, dense_first=base.sparse.dense_first,
                           dense_last=base.sparse.dense_last)
    return overlay(config, dict(options), "the sweep's lottery_options").validate()


def check_lottery(grid: SweepGrid, base: TrainConfig) -> None:
    """One-line ``UserError`` for the grid's lottery part (strategy names, options)."""
    if isinstance(grid.lottery, str):
        grid.lottery = [s.strip() for s in grid.lottery.split(",") if s.strip()]
    if not isinstance(grid.lottery, (list, tuple)):
        raise UserError(f"lottery must be a list of strategies, got {grid.lottery!r}; e.g. "
                        f"lottery: [imp]")
    if grid.lottery_options and not grid.lottery:
        key = next(iter(grid.lottery_options), "")
        raise UserError(f"the lottery option {key!r} is given but the sweep has no lottery "
                        f"cells; add --lottery imp (lottery: [imp]) or drop it")
    for strategy in grid.lottery:
        lottery_config(strategy, grid.lottery_options, base)


def reads(key: str) -> bool:
    """Whether a search reads the varied field ``key``: every field but those of a method
    option section (a search trains with its own masks, not a sparse method's)."""
    return key.split(".")[0] not in TrainConfig.option_sections()


def lottery_cells(grid: SweepGrid, base: TrainConfig) -> list[LotteryCell]:
    """The grid's searches, in order: strategies as given, then varied values, then seeds;
    each checked (``LotterySearch``'s own checks) before anything runs; duplicates dropped."""
    check_lottery(grid, base)
    keys = [k for k in grid.vary if reads(k)]
    cells, seen = [], set()
    for strategy in dict.fromkeys(grid.lottery):
        lottery = lottery_config(strategy, grid.lottery_options, base)
        for values in itertools.product(*(grid.vary[k] for k in keys)):
            varied = dict(zip(keys, values))
            for seed in grid.seed_list():
                train = varied_config(base, seed, varied)
                name = LotterySearch(train, lottery, runs_root=".", progress=False).path.name
                if name in seen:
                    continue
                seen.add(name)
                cells.append(LotteryCell(strategy, seed, varied, train, lottery, name))
    return cells


def run_search(task: SearchTask) -> CellOutcome:
    """Run (or reuse, or resume) one search; its status as a cell's (see the module doc)."""
    return guarded(task.path, lambda: run_lottery(task.train, task.lottery, out=task.path,
                                                  resume=True, progress=task.progress),
                   lambda result: CellOutcome(SEARCH_STATUS[result.status], str(result.path)))


def search_rows(cell: LotteryCell, outcome: CellOutcome, search: Path, sweep_path: Path,
                vary_keys: list) -> list[dict]:
    """The rows of the search in folder ``search`` (module doc): per level the ticket, then its
    controls; ``run_dir`` relative to ``sweep_path``."""

    def row(level: Optional[int], role: str, folder: Optional[Path], target) -> dict:
        metrics = read_json(folder / "metrics.json") if folder is not None else {}
        return {"method": cell.strategy, "density_target": target, "seed": cell.seed,
                **{k: cell.varied.get(k) for k in vary_keys},
                "run_dir": relative_to(folder or search, sweep_path), "status": outcome.status,
                **metric_values(metrics),
                "epochs_run": epochs_in_history(folder / "history.csv") if folder else None,
                "error": outcome.error, "role": role, "level": level}

    if outcome.status == "failed":
        return [row(None, "", None, None)]
    summary = read_json(search / "summary.json")
    controls = summary.get("controls", {})
    rows = []
    for entry in summary["levels"]:
        level = entry["level"]
        folder = search / f"level_{level}"
        target = read_json(folder / "metrics.json").get("target_density")
        rows.append(row(level, "", folder, target))
        for kind in cell.lottery.controls:
            if any(c["level"] == level for c in controls.get(kind, ())):
                rows.append(row(level, kind, folder / f"control_{kind}", target))
    return rows
