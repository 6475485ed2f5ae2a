"""Training one cell, in whichever process the executor chose, and the row it gives.

``run_cell`` is module-level and takes and returns plain dataclasses, so a process pool (or
another machine) can run it. It calls ``run_training`` with ``resume=True`` in the sweep's
``runs/`` folder, so the cell's run directory follows the usual rules: a finished one is read
back (status ``reused``), an interrupted one continues from its checkpoint (``resumed``), a new
one trains (``trained``). A cell whose directory another process is writing (its lock is held)
comes back as ``busy``; the sweep tries it again once the others are done. Any other exception
is the cell's failure (``failed``, with one line of error), not the sweep's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from spikesculpt.config import TrainConfig
from spikesculpt.experiments.rundir import RunBusy, resolve_run_dir
from spikesculpt.experiments.train_run import run_training

STATUS = {"trained": "trained", "resumed": "resumed", "already-finished": "reused"}
METRIC_COLUMNS = ("test_accuracy", "val_accuracy", "density", "params", "firing_rate", "synops",
                  "energy_pj", "train_seconds", "best_epoch", "epochs_run")


@dataclass
class CellTask:
    """What a worker needs to train one cell."""

    config: TrainConfig
    runs_root: str
    progress: bool = False

    def run(self) -> "CellOutcome":
        return run_cell(self)


@dataclass
class CellOutcome:
    """What a worker sends back: the status, the run directory, the metrics (finished cells)
    or the error line (failed ones)."""

    status: str                        # trained | resumed | reused | busy | failed
    run_dir: str
    metrics: dict = field(default_factory=dict)
    epochs_run: Optional[int] = None
    error: str = ""


def run_cell(task: CellTask) -> CellOutcome:
    """Train (or reuse, or resume) one cell; see the module doc."""
    run_dir = str(resolve_run_dir(task.config, runs_root=task.runs_root).path)
    return guarded(run_dir, lambda: run_training(task.config, runs_root=task.runs_root,
                                                  resume=True, progress=task.progress),
                   lambda result: CellOutcome(STATUS[result.status], str(result.run_dir.path),
                                              result.metrics,
                                              epochs_in_history(result.run_dir.history_path)))


def guarded(path: str, run: Callable[[], Any],
            outcome: Callable[[Any], CellOutcome]) -> CellOutcome:
    """``outcome(run())``, or the cell's ``busy`` outcome if the run's lock is held by another
    process, or its ``failed`` outcome (one line of error) on any other exception: a cell,
    lottery search or evolution that fails is the sweep's record, not its end."""
    try:
        result = run()
    except RunBusy:
        return CellOutcome("busy", path)
    except Exception as exc:  # noqa: BLE001 - the cell fails, the sweep goes on
        return CellOutcome("failed", path, error=error_line(exc))
    return outcome(result)


def relative_to(path, root: Path) -> str:
    """``path`` relative to ``root`` (a sweep directory) where it lies inside it, else as is."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def error_line(exc: BaseException) -> str:
    """An exception as one line: its type and its message's first line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def epochs_in_history(path: Path) -> Optional[int]:
    """The number of epoch rows in a run's history.csv (None if it cannot be read)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return sum(1 for _ in csv.DictReader(fh))
    except OSError:
        return None


def metric_values(metrics: dict) -> dict:
    """The columns of a cell's row taken from its metrics.json (absent keys left empty):
    ``density`` is the mask density where the method keeps a mask, else the nonzero fraction;
    ``params`` the trained parameters (``trained_parameters``); ``synops`` the effective
    synaptic operations per test sample over all time steps (ACs + MACs); ``energy_pj`` per
    test sample, in picojoules."""
    synops = metrics.get("synops") or {}
    effective = [synops.get(k) for k in ("effective_acs", "effective_macs")]
    return {
        "test_accuracy": metrics.get("test_accuracy"),
        "val_accuracy": metrics.get("val_accuracy"),
        "density": metrics.get("mask_density", metrics.get("density")),
        "params": trained_parameters(metrics),
        "firing_rate": metrics.get("firing_rate"),
        "synops": sum(effective) if all(v is not None for v in effective) else None,
        "energy_pj": metrics.get("energy_pj"),
        "train_seconds": metrics.get("train_seconds"),
        "best_epoch": metrics.get("best_epoch"),
    }


def trained_parameters(metrics: dict):
    """The parameters a run trains, from its metrics.json: ``params_total`` less the prunable
    weights a mask holds at zero. A method with a mask (``mask_density``: the sparse methods,
    ``ticket``) trains ``round(mask_density · params_prunable)`` of its prunable weights; one
    without (``dense``: all of them; ``genetic``/``lowrank``: ``params_total`` is already the
    gene / factor count, their encoded layers have no weight parameter) trains ``params_total``.
    None when metrics.json lacks the counts."""
    total, prunable = metrics.get("params_total"), metrics.get("params_prunable")
    if total is None:
        return None
    if metrics.get("mask_density") is None or prunable is None:
        return int(total)
    return int(total - prunable + round(metrics["mask_density"] * prunable))
