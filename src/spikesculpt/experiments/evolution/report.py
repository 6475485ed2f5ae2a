"""Plots of an evolution: fitness and both regularisers over generations; the Pareto front."""

from __future__ import annotations

from pathlib import Path

from spikesculpt.core.io import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_evolution(rows: list[dict], path: Path, title: str = "") -> None:
    """Two panels over generations (numbered from 1, as ``rows`` and the console number them):
    best / mean fitness and best validation accuracy; spatial entropy and temporal difference
    of each generation's elite with the regulariser weights."""
    plt = _plt()
    gens = [r["generation"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(gens, [r["best_fitness"] for r in rows], "o-", label="best fitness")
    a.plot(gens, [r["mean_fitness"] for r in rows], "s--", label="mean fitness")
    a.plot(gens, [r["best_accuracy"] for r in rows], "^:", label="best val accuracy")
    a.set_xlabel("generation")
    a.set_ylabel("fitness / accuracy")
    a.legend(fontsize=8)
    a.set_title("fitness", fontsize=9)
    b.plot(gens, [r["spatial_entropy"] for r in rows], "o-", color="tab:green",
           label="spatial entropy S(O)")
    b.plot(gens, [r["temporal_difference"] for r in rows], "s-", color="tab:purple",
           label="temporal difference D")
    b.set_xlabel("generation")
    b.set_ylabel("regulariser value (elite)")
    b.set_ylim(-0.02, 1.02)
    b2 = b.twinx()
    b2.plot(gens, [r["lambda_spatial"] for r in rows], ":", color="tab:green", label="λ_s")
    b2.plot(gens, [r["lambda_temporal"] for r in rows], ":", color="tab:purple", label="λ_d")
    b2.set_ylabel("weight λ(t)")
    b.legend(loc="upper left", fontsize=8)
    b2.legend(loc="upper right", fontsize=8)
    b.set_title("regularisers", fontsize=9)
    from matplotlib.ticker import MaxNLocator

    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def plot_pareto(candidates: list[dict], front: list[dict], path: Path) -> None:
    """Validation accuracy against parameters for every candidate; the non-dominated ones
    highlighted (colour: synaptic operations per sample where measured)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([c["params_total"] for c in candidates], [c["accuracy"] for c in candidates],
               s=12, color="0.7", label="all candidates")
    synops = [f.get("synops") for f in front]
    kw = {"c": synops, "cmap": "viridis"} if all(v is not None for v in synops) else \
        {"color": "tab:red"}
    sc = ax.scatter([f["params_total"] for f in front], [f["accuracy"] for f in front], s=36,
                    edgecolor="k", label="Pareto front (over all candidates)", **kw)
    if "c" in kw:
        fig.colorbar(sc, ax=ax, label="SynOps per sample")
    ax.set_xlabel("parameters (encoded network)")
    ax.set_ylabel("validation accuracy (short training)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
