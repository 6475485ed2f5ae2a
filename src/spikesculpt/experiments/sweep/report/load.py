"""Reading a sweep directory for the report: sweep.yaml, the cell rows, each cell's run files.

Rows come from cells.json (typed values) or, if it is missing, cells.csv (text, converted
here). Columns added after a sweep was written (``role``, ``params``, ``level``) read as ""
when absent, so older sweep directories report too. A cell's run files (``metrics.json``,
``history.csv``, ``rewiring.csv``) are read once, when a section asks for them; a missing or
unreadable file reads as empty (the section leaves that cell out).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import read_yaml_mapping
from spikesculpt.experiments.sweep.sweep_dir import SweepDir

FINISHED = ("trained", "resumed", "reused")
OPTIONAL_COLUMNS = ("role", "level", "params")
NUMBER_COLUMNS = ("density_target", "test_accuracy", "val_accuracy", "density", "firing_rate",
                  "synops", "energy_pj", "train_seconds", "best_epoch", "epochs_run", "params",
                  "level", "seed")


@dataclass
class SweepData:
    """A sweep directory as the report sees it."""

    path: Path
    record: dict                     # sweep.yaml
    header: dict                     # cells.json less its rows ({} when read from cells.csv)
    rows: list                       # one dict per cell, grid order, normalised (see module)
    vary_keys: list
    _files: dict = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> list:
        return [r for r in self.rows if r["status"] in FINISHED]

    @property
    def unfinished(self) -> list:
        return [r for r in self.rows if r["status"] not in FINISHED]

    def metrics(self, row: dict) -> dict:
        return self._read(row, "metrics.json", _read_json) or {}

    def history(self, row: dict) -> list:
        return self._read(row, "history.csv", _read_csv) or []

    def rewiring(self, row: dict) -> list:
        return self._read(row, "rewiring.csv", _read_csv) or []

    def _read(self, row: dict, name: str, reader):
        key = (row.get("run_dir"), name)
        if key not in self._files:
            self._files[key] = reader(self.path / str(row.get("run_dir") or "-") / name)
        return self._files[key]


def load_sweep(path) -> SweepData:
    """The sweep at ``path``; a one-line ``UserError`` if it is no sweep directory, has no
    cell rows yet, or no finished cell."""
    folder = SweepDir(path)
    where = folder.path
    if not where.is_dir():
        raise UserError(f"{where} is not a directory; pass the folder that spikesculpt sweep "
                        f"wrote (its --out, e.g. sweeps/demo)")
    if not folder.sweep_file.is_file():
        raise UserError(f"{where} holds no sweep.yaml, so it is not a sweep directory; pass the "
                        f"folder that spikesculpt sweep wrote (its --out)")
    record = read_yaml_mapping(folder.sweep_file)
    if record.get("kind") != "sweep":
        raise UserError(f"{folder.sweep_file} is not a sweep's record; pass the folder that "
                        f"spikesculpt sweep wrote (its --out)")
    header, raw = _read_rows(folder)
    grid = header.get("grid") or record.get("grid") or {}
    vary_keys = list((grid.get("vary") or {}) if isinstance(grid, dict) else {})
    rows = [normalise(r, vary_keys) for r in raw]
    data = SweepData(where, record, header, rows, vary_keys)
    if not data.finished:
        raise UserError(f"no cell of {where} has finished ({len(rows)} recorded, none trained "
                        f"or reused); fix the cause of the failures and rerun the sweep "
                        f"command (finished cells are reused), then report")
    return data


def _read_rows(folder: SweepDir) -> tuple[dict, list]:
    """(cells.json header, rows): cells.json if present, else cells.csv."""
    if folder.json_path.is_file():
        try:
            with open(folder.json_path, encoding="utf-8") as fh:
                data = json.load(fh)
            rows = data.pop("cells")
            if not isinstance(rows, list):
                raise TypeError("cells is not a list")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"cannot read {folder.json_path} ({type(exc).__name__}); rerun the "
                            f"sweep command to rewrite it (finished cells are reused)") from None
        return data, rows
    if folder.csv_path.is_file():
        try:
            with open(folder.csv_path, encoding="utf-8", newline="") as fh:
                return {}, list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UserError(f"cannot read {folder.csv_path} ({type(exc).__name__}); rerun the "
                            f"sweep command to rewrite it (finished cells are reused)") from None
    raise UserError(f"{folder.path} has no cells.csv yet: its sweep has not ended once; run "
                    f"the sweep command again to finish it (finished cells are reused), then "
                    f"report")


def normalise(row: dict, vary_keys: list) -> dict:
    """A row with every column the report reads: numbers as numbers (None when empty),
    ``method`` / ``role`` / ``status`` as text, ``level`` and ``density_target`` "" when
    absent, the varied values as given (cells.csv's text read back as YAML would be)."""
    out = dict(row)
    for column in OPTIONAL_COLUMNS:
        out.setdefault(column, "")
    for column in NUMBER_COLUMNS:
        out[column] = _number(out.get(column))
    for column in ("density_target", "level", "params"):
        if out[column] is None:
            out[column] = ""
    for column in ("method", "role", "status", "run_dir", "error"):
        out[column] = "" if out.get(column) is None else str(out[column])
    for key in vary_keys:
        value = out.get(key)
        out[key] = "" if value is None else value
    return out


def _number(value):
    """int / float from a cells.json value or a cells.csv text; None for empty or non-numbers."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and "." not in str(value) else number


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _read_csv(path: Path) -> list:
    """Rows of a numeric CSV (history.csv, rewiring.csv) as {column: float or text}."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return [{k: _number(v) if _number(v) is not None else v for k, v in r.items()}
                    for r in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
