"""The files of a search directory: level folders, the rewind snapshot, the early-time table,
and the outputs of one trained ticket or control (layout: ``search.py``).

Every file is written atomically (``core.io``); a level's (or control's) ``metrics.json`` is
written last, so its presence marks that training finished.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from spikesculpt.core.distributed import barrier
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import write_csv, write_json
from spikesculpt.experiments.efficiency import efficiency_metrics
from spikesculpt.experiments.train_run import save_model
from spikesculpt.methods.tickets.patch import tokens_kept
from spikesculpt.methods.tickets.pruning import layer_density, model_density
from spikesculpt.methods.tickets.snapshot import Snapshot
from spikesculpt.metrics.efficiency import add_to_metrics
from spikesculpt.metrics.model_stats import model_stats
from spikesculpt.sparse import Mask

# the keys of a trained phase's metrics copied into a level's (or control's) metrics.json
RUN_KEYS = ("test_accuracy", "val_accuracy", "test_loss", "best_epoch", "firing_rate",
            "layer_firing_rates", "silent_layers", "train_seconds")
# the keys of ``model_stats`` recorded as a training run records them (``train_run``)
COUNT_KEYS = ("params_total", "params_prunable", "nonzero_prunable")


def read_json(path: Path) -> dict:
    """A JSON file of the search; a corrupt one is a one-line ``UserError``. Distributed: every
    rank calls it at the same point and waits for rank 0's writes first."""
    barrier()
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise UserError(f"cannot read {path}; it is corrupt — remove the level folder to "
                        f"recompute it") from None


class SearchStore:
    """Paths and files of the search directory ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._snapshot: Optional[Snapshot] = None

    # ------------------------------------------------------------------ levels
    def level_dir(self, level: int) -> Path:
        return self.path / f"level_{level}"

    # Reads of files that rank 0 writes: every rank waits for it first (distributed runs)
    def level_done(self, level: int) -> bool:
        barrier()
        return (self.level_dir(level) / "metrics.json").is_file()

    def search_done(self, level: int) -> bool:
        """Level ``level``'s search has found the next level's mask (``search.json``)."""
        barrier()
        return (self.level_dir(level) / "search.json").is_file()

    def save_search(self, level: int, mask: Mask, info: dict) -> None:
        folder = self.level_dir(level)
        mask.save(folder / "next_mask.safetensors")
        write_json(folder / "search.json", {**info, "next_density": mask.density()})

    def next_mask(self, level: int) -> Mask:
        """The mask level ``level``'s search found (level ``level + 1``'s mask)."""
        barrier()
        return Mask.load(self.level_dir(level) / "next_mask.safetensors")

    # ------------------------------------------------------------------ rewind snapshot
    def save_snapshot(self, snapshot: Snapshot) -> None:
        snapshot.save(self.path / "rewind.pt")
        self._snapshot = snapshot

    def stored_snapshot(self) -> Optional[Snapshot]:
        path = self.path / "rewind.pt"
        barrier()
        if self._snapshot is None and path.is_file():
            self._snapshot = Snapshot.load(path)
        return self._snapshot

    def snapshot(self) -> Snapshot:
        found = self.stored_snapshot()
        if found is None:
            raise UserError(f"{self.path} has no rewind snapshot (rewind.pt); remove the search "
                            f"directory and start again")
        return found

    # ------------------------------------------------------------------ early-time
    def save_early_time(self, info: dict) -> None:
        write_json(self.path / "early_time.json", info)

    def early_time_info(self) -> Optional[dict]:
        path = self.path / "early_time.json"
        barrier()
        return read_json(path) if path.is_file() else None


def write_run(folder: Path, mask: Mask, model, phase, extra: dict, model_metadata: dict) -> dict:
    """mask, model, history and metrics.json (last) of one trained ticket or control.

    ``phase``: the trained ``Phase``, or None for a level whose ticket is not trained
    (``--evaluate ends``): then only the mask, the densities and the parameter counts are
    written. ``density`` and ``mask_density`` are the mask's (layers outside it count as dense);
    ``params_total`` / ``params_prunable`` / ``nonzero_prunable`` are ``model_stats``' counts, so
    a reader gets the trained parameters as for a training run: params_total - params_prunable
    + mask_density · params_prunable. A trained one also gets the efficiency metrics of a
    training run (SynOps, energy, footprint per test sample: ``efficiency_metrics`` on the test
    split, one extra pass over it, as ``run_training`` does).
    """
    folder.mkdir(parents=True, exist_ok=True)
    mask.save(folder / "mask.safetensors")
    density = model_density(model, mask)
    stats = model_stats(model)
    entry = {**extra, "density": density, "mask_density": density, "sparsity": 1.0 - density,
             "layer_density": layer_density(model, mask),
             "empty_layers": [n for n in mask if mask.active(n) == 0],
             **{k: stats[k] for k in COUNT_KEYS},
             "test_accuracy": None, "val_accuracy": None}
    if phase is not None and phase.metrics is not None:
        m = phase.metrics
        save_model(folder / "model.safetensors", model, {**model_metadata, "density": density})
        write_csv(folder / "history.csv", phase.trainer.history)
        entry.update({k: m[k] for k in RUN_KEYS})
        entry["timesteps"] = phase.trainer.config.timesteps
        if phase.rescaled:
            entry["rescale_factors"] = phase.rescaled
        add_to_metrics(entry, efficiency_metrics(phase.trainer, phase.trainer.splits.test))
        kept = tokens_kept(model)
        if kept is not None:
            entry["tokens_kept"] = kept
    write_json(folder / "metrics.json", entry)
    return entry
