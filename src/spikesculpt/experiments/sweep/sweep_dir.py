"""The sweep directory::

    SWEEP_DIR/
      sweep.yaml    {kind: sweep, sweep_hash, spikesculpt, commit, command, grid, base}:
                    written once (``command``: the one that created it; older folders lack it)
      runs/         one ordinary run directory per cell (<model>-<dataset>-<method>-<hash>)
      cells.csv     one row per cell, in grid order (written when the sweep ends)
      cells.json    the same rows, plus the grid, base config, counts and ``invocations``
                    (every run of the sweep on this folder: command, machine, wall time;
                    ``provenance``)
      report.md, report.html    ``spikesculpt report`` (written at the end of a sweep)

The sweep's identity (``sweep_hash``) is the grid (seeds as the list they stand for:
``seeds: 2`` and ``seeds: [0, 1]`` are the same grid) plus the base config's fields that can
change a result (bookkeeping such as ``device`` left out); sweep.yaml records the grid as
given. A rerun with the same identity reuses the folder (sweep.yaml is not rewritten); another
identity is refused unless ``force``, which replaces sweep.yaml with the new grid and keeps
every run directory (the cells the two grids share are reused). A folder that is not a sweep
(files but no sweep.yaml) or a file is refused. All writes are atomic.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Optional

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import write_csv, write_json, write_yaml
from spikesculpt.core.options import hashed_if_set, unhashed_fields
from spikesculpt.core.version import __version__
from spikesculpt.experiments.rundir import read_yaml_mapping

SWEEP_FILE = "sweep.yaml"
RUNS = "runs"


def sweep_identity(grid: dict, base: TrainConfig) -> dict:
    """What names a sweep: the grid and the base config less its bookkeeping fields and the
    method-section fields declared ``hash="if_set"`` while at their default (an option added
    later, e.g. ``genetic.interaction_init``, keeps the names of the sweeps made before it)."""
    config = base.to_dict()
    for name in unhashed_fields(base):
        config.pop(name, None)
    for section in base.option_sections():
        for name, default in hashed_if_set(type(getattr(base, section))).items():
            if config[section].get(name) == default:
                config[section].pop(name, None)
    return {"grid": grid, "base": config}


def source_commit() -> Optional[str]:
    """The git commit of the spikesculpt source that runs (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class SweepDir:
    """A sweep directory (see the module doc)."""

    def __init__(self, path):
        self.path = Path(path)

    @property
    def sweep_file(self) -> Path:
        return self.path / SWEEP_FILE

    @property
    def runs_root(self) -> Path:
        return self.path / RUNS

    @property
    def csv_path(self) -> Path:
        return self.path / "cells.csv"

    @property
    def json_path(self) -> Path:
        return self.path / "cells.json"

    def check(self, sweep_hash: str, force: bool) -> str:
        """'fresh', 'same' (a rerun) or 'replace' (``force`` on another grid); a one-line
        ``UserError`` for a file, a folder of other files, or another grid without ``force``."""
        if not self.path.exists():
            return "fresh"
        if not self.path.is_dir():
            raise UserError(f"{self.path} exists and is a file, not a sweep directory; choose "
                            f"another --out")
        if not self.sweep_file.is_file():
            visible = sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))
            if visible:
                raise UserError(f"{self.path} is not empty ({visible[0]}) and holds no "
                                f"{SWEEP_FILE}; choose another --out or an empty folder")
            return "fresh"
        stored = read_yaml_mapping(self.sweep_file)
        if stored.get("kind") != "sweep":
            raise UserError(f"{self.sweep_file} is not a sweep's record; choose another --out")
        if stored.get("sweep_hash") == sweep_hash:
            return "same"
        if not force:
            raise UserError(f"{self.path} holds a sweep of another grid or base config (sweep "
                            f"hash {stored.get('sweep_hash')}, this one {sweep_hash}); choose "
                            f"another --out, or pass --force to replace its grid (finished "
                            f"cells are kept and reused)")
        return "replace"

    def write_record(self, identity: dict, sweep_hash: str,
                     command: Optional[str] = None) -> None:
        """Write sweep.yaml: ``identity`` (``sweep_identity``: the grid as given, the base
        config) under its hash, and the ``command`` that made it."""
        write_yaml(self.sweep_file, {"kind": "sweep", "sweep_hash": sweep_hash,
                                     "spikesculpt": __version__, "commit": source_commit(),
                                     "command": command, **identity})

    def previous_invocations(self) -> list:
        """The ``invocations`` of the cells.json already here ([] if none or unreadable)."""
        try:
            with open(self.json_path, encoding="utf-8") as fh:
                found = json.load(fh).get("invocations")
        except (OSError, ValueError, AttributeError):
            return []
        return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []

    def write_cells(self, rows: list[dict], header: dict) -> None:
        """cells.csv (the rows) and cells.json (``header`` + the rows), atomically."""
        write_csv(self.csv_path, rows)
        write_json(self.json_path, {**header, "cells": rows})
