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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from spikesculpt.config import TrainConfig, digest
from spikesculpt.errors import UserError
from spikesculpt.methods.registry import METHODS

DEFAULT_RUNS_ROOT = "runs"


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


def default_run_name(config: TrainConfig) -> str:
    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.dataset).name if ":" in config.dataset
                     else config.dataset)
    return f"{config.model}-{dataset}-{config.method}-{config_hash(config)}"


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
