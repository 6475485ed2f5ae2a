"""``run_sweep``: train every cell of a grid (or reuse it), then write cells.csv / cells.json.

    result = run_sweep(TrainConfig(epochs=20), methods=["dense", "esl"], densities=[0.2, 0.1],
                       seeds=3, out="sweeps/demo", workers=2)
    result.rows          # one dict per cell, grid order (the rows of cells.csv)
    result.failed        # the rows of the cells that failed

Order of work: the grid is checked and expanded and every cell's config validated (bad input:
one-line ``UserError``, nothing written), then the sweep directory is checked (``SweepDir``),
then the cells run on the executor. A cell that fails is recorded with its error and the others
go on; a cell another process is writing is tried again after the others (every
``BUSY_POLL_SECONDS`` until its lock is free; it is then usually reused).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from tqdm.auto import tqdm

from spikesculpt.config import TrainConfig, digest
from spikesculpt.core.version import __version__
from spikesculpt.experiments.rundir import dataset_slug, resolve_run_dir
from spikesculpt.experiments.sweep.cell_run import (
    CellOutcome,
    CellTask,
    error_line,
    metric_values,
)
from spikesculpt.experiments.sweep.controls import WIDTH
from spikesculpt.experiments.sweep.evolve_cells import EvolveTask, evolve_cells, evolve_row
from spikesculpt.experiments.sweep.executor import Executor, LocalExecutor
from spikesculpt.experiments.sweep.grid import Cell, SweepGrid
from spikesculpt.experiments.sweep.lottery_cells import SearchTask, lottery_cells, search_rows
from spikesculpt.experiments.sweep.provenance import default_command, invocation, now_iso
from spikesculpt.experiments.sweep.report import ReportFiles, write_report
from spikesculpt.experiments.sweep.sweep_dir import SweepDir, sweep_identity

DEFAULT_SWEEPS_ROOT = "sweeps"
BUSY_POLL_SECONDS = 2.0


@dataclass
class SweepResult:
    """A finished sweep: its folder, one row per cell (grid order), and the counts by status."""

    path: Path
    rows: list
    vary_keys: list
    report: Optional[ReportFiles] = None

    @property
    def cells_csv(self) -> Path:
        return self.path / "cells.csv"

    @property
    def failed(self) -> list:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def counts(self) -> dict:
        out: dict = {}
        for row in self.rows:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out


def run_sweep(base: TrainConfig, methods: Union[str, Sequence[str]] = (),
              densities: Optional[Sequence[float]] = None, seeds: Union[int, Sequence[int]] = 1,
              vary: Optional[dict] = None, out: Optional[str] = None, workers: int = 1,
              force: bool = False, executor: Optional[Executor] = None,
              progress: bool = True, controls: Sequence[str] = (), lottery: Sequence[str] = (),
              lottery_options: Optional[dict] = None, evolve: bool = False,
              evolve_options: Optional[dict] = None, report: bool = True,
              command: Optional[str] = None) -> SweepResult:
    """Run the grid methods × densities × seeds × ``vary`` on ``base`` (see the module doc).

    ``seeds``: a count N (seeds 0..N-1) or a list of seeds. ``densities``: for the methods that
    take one (None: ``base``'s). ``vary``: ``{TrainConfig field: [values]}`` (dotted for a
    section: ``neuron.tau``). ``out``: the sweep directory (default
    ``sweeps/<model>-<dataset>-<sweep hash>``). ``workers``: processes on this machine
    (``LocalExecutor``), or pass another ``executor``. ``force``: replace the grid recorded in
    an existing sweep directory (its finished cells are reused). ``controls``: control cells
    (``["matched-dense"]``: per density, a dense model narrowed to the same connections).
    ``lottery``: ticket-search strategies (``["imp"]``), one search per strategy × seed (×
    varied values) with the ``LotteryConfig`` fields in ``lottery_options`` (``{"rounds": 4,
    "rate": 0.5, "controls": ["reinit"]}``); its rows: one per level and control
    (``lottery_cells.py``). ``evolve``: one evolution of the genetic wiring rule per seed (×
    varied values) with the ``EvolutionConfig`` fields in ``evolve_options`` (``{"population":
    8, "generations": 5}``); its row: the final training, method ``genetic``, role ``evolved``
    (``evolve_cells.py``). ``report``: write report.md and report.html at the end
    (``write_report``; skipped when no cell finished). ``command``: what to record as the
    command that ran (default: this process's argv)."""
    grid = SweepGrid(methods=list(methods or ()) if not isinstance(methods, str) else methods,
                     densities=list(densities) if densities is not None else None,
                     seeds=seeds if isinstance(seeds, int) else list(seeds),
                     vary=dict(vary or {}), controls=list(controls),
                     lottery=lottery if isinstance(lottery, str) else list(lottery),
                     lottery_options=dict(lottery_options or {}), evolve=evolve,
                     evolve_options=dict(evolve_options or {}))
    return run_grid(base, grid, out=out, executor=executor or LocalExecutor(workers),
                    force=force, progress=progress, report=report, command=command)


def run_grid(base: TrainConfig, grid: SweepGrid, out: Optional[str] = None,
             executor: Optional[Executor] = None, force: bool = False,
             progress: bool = True, report: bool = True,
             command: Optional[str] = None) -> SweepResult:
    """``run_sweep`` for a ``SweepGrid`` (what the CLI builds from flags or a YAML grid)."""
    started, clock = now_iso(), time.perf_counter()
    command = command or default_command()
    cells = grid.validate().cells(base)  # every config checked before anything is written
    searches = lottery_cells(grid, base)  # the ticket searches (lottery_cells.py), checked too
    evolutions = evolve_cells(grid, base)  # the evolutions (evolve_cells.py), checked too
    identity = sweep_identity(grid.to_dict(), base)
    sweep_hash = digest({**identity, "grid": grid.normalized()})  # --seeds 2 == --seeds 0,1
    folder = SweepDir(out or Path(DEFAULT_SWEEPS_ROOT) /
                      f"{base.model}-{dataset_slug(base.dataset)}-{sweep_hash}")
    if folder.check(sweep_hash, force) != "same":
        folder.write_record(identity, sweep_hash, command)
    executor = executor or LocalExecutor(1)
    cell_progress = progress and executor.workers == 1  # per-epoch lines: one task at a time
    runs = folder.runs_root
    tasks = [CellTask(c.config, str(runs), cell_progress) for c in cells] + \
        [SearchTask(s.train, s.lottery, str(runs / s.name), cell_progress) for s in searches] + \
        [EvolveTask(e.train, e.evolution, str(runs / e.name), cell_progress) for e in evolutions]
    outcomes = _run_tasks(tasks, executor, progress)
    vary_keys = list(grid.vary)
    rows = [cell_row(cell, outcome, folder, vary_keys) for cell, outcome in zip(cells, outcomes)]
    for search, outcome in zip(searches, outcomes[len(cells):]):
        rows += search_rows(search, outcome, runs / search.name, folder.path, vary_keys)
    for evolution, outcome in zip(evolutions, outcomes[len(cells) + len(searches):]):
        rows.append(evolve_row(evolution, outcome, runs / evolution.name, folder.path, vary_keys))
    result = SweepResult(folder.path, rows, vary_keys)
    this_run = invocation(command, started, time.perf_counter() - clock, executor.workers,
                          result.counts)
    folder.write_cells(rows, {"sweep_hash": sweep_hash, "spikesculpt": __version__,
                              **identity, "counts": result.counts,
                              "invocations": [*folder.previous_invocations(), this_run]})
    if report and len(result.failed) < len(rows):
        result.report = write_report(folder.path)
    return result


def run_task(task):
    """The executor's ``fn``: a cell (``CellTask``), a ticket search (``SearchTask``) or an
    evolution (``EvolveTask``)."""
    return task.run()


def _run_tasks(tasks: list, executor: Executor, progress: bool) -> list[CellOutcome]:
    """Every task's outcome, in grid order; a progress bar over the whole grid."""
    outcomes: list[Optional[CellOutcome]] = [None] * len(tasks)
    counts = {"trained": 0, "reused": 0, "failed": 0}
    bar = tqdm(total=len(tasks), desc="sweep", unit="cell", disable=not progress or None,
               dynamic_ncols=True)
    pending = list(range(len(tasks)))
    try:
        while pending:
            busy = []
            for done in executor.run(run_task, [tasks[i] for i in pending]):
                i = pending[done.index]
                outcome = done.value if done.error is None else CellOutcome(
                    "failed", "", error=error_line(done.error))
                if outcome.status == "busy":
                    busy.append(i)
                    continue
                outcomes[i] = outcome
                key = "trained" if outcome.status == "resumed" else outcome.status
                counts[key] += 1
                bar.set_postfix(counts, refresh=False)
                bar.update(1)
            pending = sorted(busy)
            if pending:
                bar.set_postfix({**counts, "waiting": len(pending)}, refresh=True)
                time.sleep(BUSY_POLL_SECONDS)
    finally:
        bar.close()
    return outcomes  # type: ignore[return-value]


def cell_row(cell: Cell, outcome: CellOutcome, folder: SweepDir, vary_keys: list) -> dict:
    """The row of one cell in cells.csv / cells.json (run_dir relative to the sweep folder)."""
    run_dir = outcome.run_dir or str(resolve_run_dir(cell.config,
                                                     runs_root=str(folder.runs_root)).path)
    try:
        run_dir = str(Path(run_dir).relative_to(folder.path))
    except ValueError:
        pass
    return {"method": cell.method, "role": cell.role, "density_target": cell.density,
            "seed": cell.seed, **{k: cell.varied.get(k) for k in vary_keys},
            "width": cell.config.model_kwargs.get(WIDTH), "run_dir": run_dir,
            "status": outcome.status, **metric_values(outcome.metrics),
            "epochs_run": outcome.epochs_run, "error": outcome.error}
