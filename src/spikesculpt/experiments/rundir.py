"""Run directories: where a run's outputs live, how they are named, and whether a run is done.

A run directory holds::

    config.yaml         the full config (with its hash)
    checkpoint.pt       last epoch's training state (for --resume); removed when the run finishes
    history.csv         one row per epoch
    model.safetensors   the model with the best validation accuracy
    metrics.json        final metrics (see README, "The metrics.json contract")
    training_curves.png

By default the directory is ``<runs_root>/<model>-<dataset>-<config hash>``. A directory whose
``metrics.json`` exists is *finished*; one with only ``config.yaml``/``checkpoint.pt`` is
*interrupted*. Nothing here ever deletes a finished run's outputs.

Every command that owns a directory (``train``, ``lottery``, ``evolve``) names it by the config
file it writes first (``RUN_KINDS``) and, while writing, holds an exclusive lock on
``.spikesculpt.lock`` inside it (``RunLock``): a second process that would write the same
directory stops with a one-line error instead of mixing its files with the first one's. The
lock is an ``fcntl.flock`` lock, released by the operating system when the process ends, however
it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

try:  # POSIX; elsewhere runs are not locked (documented in docs/runs)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

import yaml

from spikesculpt.config import TrainConfig, digest
from spikesculpt.core.errors import UserError
from spikesculpt.methods.registry import METHODS

DEFAULT_RUNS_ROOT = "runs"
LOCK_NAME = ".spikesculpt.lock"
# The config file each kind of run directory is created with -> what a person calls that kind.
RUN_KINDS = {"config.yaml": "a training run", "lottery.yaml": "a lottery search",
             "evolve_config.yaml": "an evolution"}


def check_run_dir_kind(path: Path, own_config: str) -> None:
    """Refuse a directory that another command wrote, or that holds files of no run at all.

    ``path`` may be missing or empty (hidden files, e.g. the lock or an interrupted atomic
    write's temp file, do not count), or hold ``own_config``; anything else raises a
    ``UserError`` naming what is there, before anything is written.
    """
    if not path.exists():
        return
    if not path.is_dir():
        raise UserError(f"{path} exists and is not a directory; choose another --out")
    if (path / own_config).is_file():
        return
    own_kind = RUN_KINDS[own_config]
    for name, kind in RUN_KINDS.items():
        if name != own_config and (path / name).is_file():
            raise UserError(f"{path} holds {kind} ({name}), not {own_kind}; choose another "
                            f"--out")
    visible = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    if visible:
        raise UserError(f"{path} is not empty ({visible[0]}"
                        f"{f' and {len(visible) - 1} more' if len(visible) > 1 else ''}) and "
                        f"is not {own_kind}; choose another --out or an empty folder")


class RunLock:
    """An exclusive lock on a run directory while a process writes it (see the module doc).

        with RunLock(path):      # creates path; UserError if another process holds it
            ...write outputs...
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = None

    def acquire(self) -> "RunLock":
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
            raise UserError(f"{self.path} is being written by another spikesculpt process "
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
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

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

    def is_finished(self) -> bool:
        return self.metrics_path.is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def stored_hash(self) -> str | None:
        """The ``config_hash`` recorded in config.yaml, or None if there is none."""
        if not self.config_path.is_file():
            return None
        return load_config_file(self.config_path)[1]


def hashed_train_config(config: TrainConfig) -> dict:
    """What names a training run: ``config.hashed_dict`` with the option section that the
    method itself declares (``Method.config_section``), so a newly registered method's options
    are hashed without being listed anywhere else."""
    return config.hashed_dict(getattr(METHODS.get(config.method), "config_section", None))


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


def load_config_file(path: Path) -> tuple[dict, str | None]:
    """Read a run's config.yaml: (config mapping, stored hash)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read {path}: {type(exc).__name__}; "
                        f"fix or remove the file") from None
    if not isinstance(data, dict) or "config" not in data:
        raise UserError(f"{path} is not a spikesculpt run config (no 'config' key); "
                        f"point at a run directory written by 'spikesculpt train'")
    return data["config"], data.get("config_hash")
