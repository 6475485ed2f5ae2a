"""The run directory: ONE implementation for every command that owns one (``train``,
``compare``, ``lottery``, ``evolve``; the coming ``sweep``).

A run directory of any *kind* (``train``, ``lottery``, ``evolution``) holds::

    config.yaml         {kind, config_hash, spikesculpt, config}: written first
    checkpoint.pt       the run's state for --resume (atomic ``torch.save``); removed when done
    <result file>       written last, its presence marks the run finished:
                        metrics.json (train), summary.json (lottery), evolution.json (evolution)
    ...                 the kind's other outputs

The rules, the same for every kind (``RunDir.check``):

- a missing or empty folder (hidden files such as the lock do not count) is *fresh*;
- a folder of another kind, another config (hash), or of files of no run is refused with one
  line, before anything is written;
- a folder whose result file exists, and is complete for what is asked (the kind may say what
  complete means: a lottery summary must hold every control asked for, an evolution's
  ``evolution.json`` its ``final`` section), is *finished* (re-running is a no-op); one with a
  checkpoint (or the kind's own progress, e.g. lottery levels) is *interrupted*: it continues
  with ``--resume`` and is refused without it.

Names: ``<runs_root>/<prefix>-<config hash>`` (``train``: ``<model>-<dataset>-<method>``), the
hash from :func:`digest` of the config's hashed fields (:func:`hashed_train_config`).

One writer at a time: while writing, a process holds an exclusive lock on ``.spikesculpt.lock``
(``RunLock``); a second process aimed at the same folder stops with a one-line error instead of
mixing its files with the first one's. The lock is an ``fcntl.flock`` lock, released by the
operating system when the process ends, however it ends, so a killed run leaves no stale lock.
Folders written before this layout named their config ``lottery.yaml`` / ``evolve_config.yaml``;
those are still read (``LEGACY_CONFIGS``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

try:  # POSIX; elsewhere runs are not locked (documented in docs/runs)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

import torch
import yaml

from spikesculpt.config import TrainConfig, digest
from spikesculpt.core.distributed import is_main
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write, write_json, write_yaml
from spikesculpt.core.version import __version__
from spikesculpt.methods import resolved_config
from spikesculpt.methods.registry import METHODS

DEFAULT_RUNS_ROOT = "runs"
LOCK_NAME = ".spikesculpt.lock"
KINDS = {"train": "a training run", "lottery": "a lottery search", "evolution": "an evolution"}
RESULTS = {"train": "metrics.json", "lottery": "summary.json", "evolution": "evolution.json"}
CONFIG_NAME = "config.yaml"
STATE_NAME = "checkpoint.pt"
LEGACY_CONFIGS = {"lottery.yaml": "lottery", "evolve_config.yaml": "evolution"}


class RunBusy(UserError):
    """The run directory is locked by another process (a ``UserError``: one line, exit 2 for
    ``train``; a sweep catches it and comes back to the cell later)."""


class RunLock:
    """An exclusive lock on a run directory while a process writes it (see the module doc).

        with RunLock(path):      # creates path; UserError if another process holds it
            ...write outputs...
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = None

    def acquire(self) -> "RunLock":
        if not is_main():  # distributed: rank 0 holds the lock for every rank
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return self
        fh = open(self.path / LOCK_NAME, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise RunBusy(f"{self.path} is being written by another spikesculpt process "
                            f"(pid {holder}); wait for it to finish, or choose another --out")
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass
class RunDir:
    """A run directory of one ``kind``; see the module doc for its layout and rules."""

    path: Path
    kind: str = "train"

    def __post_init__(self):
        self.path = Path(self.path)
        if self.kind not in KINDS:
            raise ValueError(f"unknown run kind {self.kind!r}; one of {sorted(KINDS)}")

    # ------------------------------------------------------------------ files
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def checkpoint_path(self) -> Path:
        return self.path / STATE_NAME

    @property
    def result_path(self) -> Path:
        return self.path / RESULTS[self.kind]

    # train's outputs, by their documented names
    @property
    def history_path(self) -> Path:
        return self.path / "history.csv"

    @property
    def model_path(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.json"

    @property
    def plot_path(self) -> Path:
        return self.path / "training_curves.png"

    # ------------------------------------------------------------------ state
    def is_finished(self, complete: Optional[Callable[[dict], bool]] = None) -> bool:
        """The result file exists (and ``complete(result)`` holds, where given)."""
        if not self.result_path.is_file():
            return False
        if complete is None:
            return True
        try:
            return bool(complete(json.loads(self.result_path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            return False

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def stored(self) -> tuple[Optional[str], Optional[str], Optional[dict]]:
        """(kind, config hash, config) recorded in the folder, (None, None, None) if none."""
        for name, legacy_kind in ((CONFIG_NAME, None), *LEGACY_CONFIGS.items()):
            path = self.path / name
            if path.is_file():
                data = read_yaml_mapping(path)
                if legacy_kind is not None:  # lottery.yaml / evolve_config.yaml
                    digest_ = data.get("config_hash", data.get("evolution_hash"))
                    return legacy_kind, digest_, data
                return data.get("kind", "train"), data.get("config_hash"), data.get("config")
        return None, None, None

    def stored_hash(self) -> Optional[str]:
        """The config hash recorded in the folder, or None if there is none."""
        return self.stored()[1]

    def check(self, digest_: str, resume: bool, in_progress: bool = False,
              complete: Optional[Callable[[dict], bool]] = None) -> str:
        """'fresh', 'resume' or 'finished' for a run of config ``digest_`` (module doc rules);
        ``in_progress``: the kind's own sign of an interrupted run besides a checkpoint;
        ``complete``: whether an existing result answers this request (default: it does)."""
        if not self.path.exists():
            return "fresh"
        if not self.path.is_dir():
            raise UserError(f"{self.path} exists and is not a directory; choose another --out")
        kind, stored, _ = self.stored()
        if kind is None:
            visible = sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))
            if visible:
                more = f" and {len(visible) - 1} more" if len(visible) > 1 else ""
                raise UserError(f"{self.path} is not empty ({visible[0]}{more}) and is not "
                                f"{KINDS[self.kind]}; choose another --out or an empty folder")
            return "fresh"
        if kind != self.kind:
            raise UserError(f"{self.path} holds {KINDS[kind]}, not {KINDS[self.kind]}; choose "
                            f"another --out")
        if stored != digest_:
            raise UserError(f"{self.path} holds {KINDS[kind]} of another config (hash {stored}, "
                            f"this one {digest_}); choose another --out")
        if self.is_finished(complete):
            return "finished"
        if self.has_checkpoint() or in_progress:
            if not resume:
                raise UserError(f"{self.path} holds an interrupted run of this config; pass "
                                f"--resume to continue it, or --out DIR to start elsewhere")
            return "resume"
        return "fresh"

    def start(self, digest_: str, config: dict) -> None:
        """Write config.yaml: the first file of a fresh run."""
        write_yaml(self.config_path, {"kind": self.kind, "config_hash": digest_,
                                      "spikesculpt": __version__, "config": config})

    def read_result(self, digest_: str) -> dict:
        """The result of a finished run, checked to belong to this config."""
        try:
            result = json.loads(self.result_path.read_text(encoding="utf-8"))
            if not isinstance(result, dict):
                raise ValueError("not a mapping")
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.result_path} is corrupt ({type(exc).__name__}); remove it "
                            f"and run the same command with --resume to measure the run again, "
                            f"or choose another --out") from None
        stored = result.get("config_hash", digest_)
        if stored != digest_:
            raise UserError(f"{self.result_path} belongs to another config (hash {stored}, "
                            f"this one {digest_}); the folder holds mixed runs: choose another "
                            f"--out")
        return result

    def write_result(self, result: dict) -> None:
        """Write the result file (last: it marks the run finished) and drop the checkpoint."""
        write_json(self.result_path, result)
        self.checkpoint_path.unlink(missing_ok=True)

    def save_state(self, state) -> None:
        """The run's state for --resume, atomically (``torch.save``)."""
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(state, tmp))

    def load_state(self, weights_only: bool = True):
        """The state ``save_state`` wrote; a corrupt file is a one-line ``UserError``."""
        try:
            return torch.load(self.checkpoint_path, map_location="cpu", weights_only=weights_only)
        except Exception as exc:  # any unreadable or mismatched state is a user-facing problem
            raise UserError(f"cannot resume from {self.checkpoint_path}: {type(exc).__name__}; "
                            f"it is corrupt or from another version; remove it to start over") \
                from None

    def lock(self) -> "RunLock":
        return RunLock(self.path)


def read_yaml_mapping(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read {path}: {type(exc).__name__}; fix or remove the file") \
            from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a spikesculpt run config; fix or remove the file")
    return data


def hashed_train_config(config: TrainConfig) -> dict:
    """What names a training run: ``hashed_dict`` of the *resolved* config (the method's
    defaults in place of its unset options: ``methods.resolved_config``, a copy; ``config`` is
    not changed) with the option section that the method itself declares
    (``Method.config_section``), so a newly registered method's options are hashed without
    being listed anywhere else, and leaving an option unset or setting it to the method's
    default names the same run."""
    resolved = resolved_config(config)
    return resolved.hashed_dict(getattr(METHODS.get(config.method), "config_section", None))


def config_hash(config: TrainConfig) -> str:
    """The hash naming ``config``'s run directory (see :func:`hashed_train_config`)."""
    return digest(hashed_train_config(config))


def dataset_slug(dataset: str) -> str:
    """``dataset`` as part of a folder name: the file name of ``npz:PATH``-style sets, any run of
    characters other than letters (of any script), digits, ``_.-`` replaced by ``_``."""
    name = Path(dataset).name if ":" in dataset else dataset
    return re.sub(r"[^\w.-]+", "_", name)


def default_run_name(config: TrainConfig) -> str:
    return f"{config.model}-{dataset_slug(config.dataset)}-{config.method}-{config_hash(config)}"


def resolve_run_dir(config: TrainConfig, out: str | None = None,
                    runs_root: str = DEFAULT_RUNS_ROOT) -> RunDir:
    return RunDir(Path(out) if out else Path(runs_root) / default_run_name(config))
