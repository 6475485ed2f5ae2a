"""What a ticket search reports: ``summary.json`` (one row per level, the controls, the run's
settings) and its figure (test accuracy against density, levels and controls)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Optional

import torch

from spikesculpt.config import TrainConfig
from spikesculpt.core.io import atomic_write
from spikesculpt.core.version import __version__
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.lottery.store import SearchStore, read_json

LEVEL_KEYS = ("level", "density", "sparsity", "test_accuracy", "val_accuracy", "test_loss",
              "best_epoch", "firing_rate", "train_seconds", "timesteps", "tokens_kept")
CONTROL_KEYS = ("level", "density", "sparsity", "test_accuracy", "val_accuracy")


def level_row(m: dict) -> dict:
    """A level's summary row from its metrics.json."""
    row = {k: m.get(k) for k in LEVEL_KEYS if k in m}
    search = m.get("search") or {}
    row["search_seconds"] = search.get("seconds")
    row["search_cpu_seconds"] = search.get("cpu_seconds")
    for key in ("embedding_density", "patch_keep", "empty_layers"):
        if key in m:
            row[key] = m[key]
    return row


def control_rows(store: SearchStore, rounds: int) -> dict:
    """``{kind: [row per level with that control]}`` for the controls found on disk."""
    controls = {}
    for kind in LotteryConfig.CONTROLS:
        found = []
        for k in range(1, rounds + 1):
            path = store.level_dir(k) / f"control_{kind}" / "metrics.json"
            if path.is_file():
                m = read_json(path)
                found.append({key: m.get(key) for key in CONTROL_KEYS})
        if found:
            controls[kind] = found
    return controls


def search_summary(store: SearchStore, train: TrainConfig, lottery: LotteryConfig, digest: str,
                   rewind_step: Optional[int]) -> dict:
    """The contents of summary.json; ``rewind_step`` None for strategies without rewinding."""
    rows = [level_row(read_json(store.level_dir(k) / "metrics.json"))
            for k in range(lottery.rounds + 1)]
    return {
        "strategy": lottery.strategy, "config_hash": digest,
        "model": train.model, "dataset": train.dataset, "seed": train.seed,
        "epochs": train.epochs, "timesteps": train.timesteps,
        "rounds": lottery.rounds, "rate": lottery.rate, "prune": lottery.prune,
        "rewind": lottery.rewind if rewind_step is not None else None,
        "rewind_step": rewind_step,
        "early_time": store.early_time_info(),
        "dense_test_accuracy": rows[0]["test_accuracy"],
        "search_seconds": sum(r["search_seconds"] or 0.0 for r in rows),
        "search_cpu_seconds": sum(r["search_cpu_seconds"] or 0.0 for r in rows),
        "levels": rows, "controls": control_rows(store, lottery.rounds),
        "torch": torch.__version__, "spikesculpt": __version__,
        "python": platform.python_version(),
    }


def plot_accuracy_vs_density(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    levels = [r for r in summary["levels"] if r.get("test_accuracy") is not None]
    if levels:
        ax.plot([r["density"] for r in levels], [100 * r["test_accuracy"] for r in levels],
                "o-", color="tab:blue", label=f"tickets ({summary['strategy']})")
    dense = summary.get("dense_test_accuracy")
    if dense is not None:
        ax.axhline(100 * dense, color="gray", ls="--", lw=1, label="dense")
    styles = {"reinit": ("s--", "tab:red", "random re-initialisation"),
              "random": ("^--", "tab:green", "random pruning")}
    for kind, rows in summary.get("controls", {}).items():
        rows = [r for r in rows if r.get("test_accuracy") is not None]
        if rows:
            fmt, color, label = styles.get(kind, ("x--", "black", kind))
            ax.plot([r["density"] for r in rows], [100 * r["test_accuracy"] for r in rows], fmt,
                    color=color, label=label)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("density (fraction of connections kept, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{summary['model']} on {summary['dataset']}, seed {summary['seed']}",
                 fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
