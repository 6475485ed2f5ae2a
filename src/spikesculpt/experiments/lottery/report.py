"""The figure of a ticket search: test accuracy against density, levels and controls."""

from __future__ import annotations

from pathlib import Path

from spikesculpt.core.io import atomic_write


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
