"""Files a sparse run adds to its run directory.

- ``masks.safetensors``: the mask of the kept (best-validation) model, packed bits
  (``sparse.Mask.save``; load with ``Mask.load``);
- ``rewiring.csv``: one row per mask update: ``step, alpha, changed, topology_change``,
  ``changed/<layer>`` (connections regrown = connections dropped, per layer) and the
  exploration figures of ``ages.ConnectionAges`` (``dropped_newborn, grown_returning, mean_age,
  explored``);
- ``layer_density.png``: density per prunable layer (bars) against the global density;
- ``turnover.png``: connections changed per update (bars); the cumulative number of connections
  regrown as a fraction of the active ones (never falls); and the fraction of the initial
  connections absent from the mask now (topology change: it falls when dropped initial
  connections are regrown, so it is *not* a cumulative count).
"""

from __future__ import annotations

from pathlib import Path

from spikesculpt.core.io import atomic_write, write_csv


def write_sparse_report(method, folder: Path) -> None:
    method.mask.save(folder / "masks.safetensors")
    if method.updates:
        write_csv(folder / "rewiring.csv", method.updates)
    _plot_layer_density(method, folder / "layer_density.png")
    if method.updates:
        _plot_turnover(method, folder / "turnover.png")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(name: str) -> str:
    return name[:-len(".weight")] if name.endswith(".weight") else name


def _plot_layer_density(method, path: Path) -> None:
    plt = _plt()
    names = list(method.counts)
    dens = [method.mask.density(n) if n in method.mask else 1.0 for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(names) + 2), 3.6))
    ax.bar(range(len(names)), dens, color="tab:blue")
    ax.axhline(method.density, color="tab:red", ls="--", label=f"global target {method.density:g}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([_short(n) for n in names], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("density (fraction kept)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{method.name}: per-layer density ({method.init} allocation)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def cumulative_regrown_fraction(method) -> list[float]:
    """After each update: connections regrown so far / active connections (non-decreasing)."""
    active = sum(int(m.sum()) for _, m in method.mask.items()) or 1
    out, total = [], 0
    for record in method.updates:
        total += record["changed"]
        out.append(total / active)
    return out


def _plot_turnover(method, path: Path) -> None:
    plt = _plt()
    steps = [r["step"] for r in method.updates]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.bar(steps, [r["changed"] for r in method.updates], width=max(1, method.every * 0.8),
           color="tab:blue", label="connections changed per update")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("connections regrown")
    ax2 = ax.twinx()
    regrown = cumulative_regrown_fraction(method)
    ax2.plot(steps, regrown, color="tab:purple", ls="--",
             label="connections regrown so far / active connections (cumulative)")
    ax2.plot(steps, [r["topology_change"] for r in method.updates], color="tab:red",
             label="initial connections absent now (net; falls when they regrow)")
    ax2.set_ylabel("fraction", color="tab:red")
    ax2.set_ylim(0, max(1.0, 1.05 * max(regrown)))
    ax.set_title(f"{method.name}: rewiring ({method.grow} growth, α0={method.drop_fraction:g})",
                 fontsize=9)
    fig.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
