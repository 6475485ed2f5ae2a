"""Training-curve figure: loss, accuracy and firing rate per epoch (PNG)."""

from __future__ import annotations

from pathlib import Path

from spikesculpt.core.io import atomic_write


def plot_history(history: list[dict], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(epochs, [r["train_loss"] for r in history], label="train")
    axes[0].plot(epochs, [r["val_loss"] for r in history], label="validation")
    axes[0].set_ylabel("loss")
    axes[1].plot(epochs, [r["train_accuracy"] for r in history], label="train")
    axes[1].plot(epochs, [r["val_accuracy"] for r in history], label="validation")
    axes[1].set_ylabel("accuracy")
    axes[2].plot(epochs, [r["firing_rate"] for r in history], color="tab:red")
    axes[2].set_ylabel("firing rate (validation)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
