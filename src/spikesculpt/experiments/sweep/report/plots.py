"""The report's figures, each returned as PNG bytes (matplotlib, Agg backend, 100 dpi).

Each group of cells is drawn as mean over its seeds (error bars: sample std). A *curve* joins
the groups of one method, role and set of varied values across densities (lottery: across
levels); it keeps one colour and marker in every figure. A figure with nothing to draw returns
None (its section is left out).
"""

from __future__ import annotations

import io
import math
from typing import Callable, Optional

from spikesculpt.experiments.sweep.report.groups import Group, densities
from spikesculpt.experiments.sweep.report.load import SweepData

MARKERS = "osD^v<>pX*h"
MAX_PANELS = 12


def curve_key(g: Group) -> str:
    """The curve a group belongs to: its label and varied values (not its density / level)."""
    return f"{g.label} ({g.varied_text})" if g.varied_text else g.label


def curve_styles(groups: list[Group]) -> dict:
    """{curve key: (colour, marker)}, in group order (tab10, then tab20)."""
    keys = list(dict.fromkeys(curve_key(g) for g in groups))
    import matplotlib

    palette = matplotlib.colormaps["tab10" if len(keys) <= 10 else "tab20"]
    return {k: (palette(i % palette.N), MARKERS[i % len(MARKERS)]) for i, k in enumerate(keys)}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _density_title(d) -> str:
    return "no density (dense, genetic, ...)" if d == "" else f"density {d:.3g}"


def evenly_spaced(items: list, k: int) -> list:
    """``items`` if there are at most ``k``, else ``k`` of them at evenly spaced positions,
    the first and the last included (k >= 2)."""
    if len(items) <= k:
        return list(items)
    last = len(items) - 1
    return [items[round(i * last / (k - 1))] for i in range(k)]


# ---------------------------------------------------------------------------- accuracy
def accuracy_vs_density(groups: list[Group], styles: dict) -> Optional[bytes]:
    """Test accuracy (%) vs target density (log x), one curve per method; methods that take no
    density are horizontal lines (dashed, ± std band)."""
    sparse = [g for g in groups if g.density != "" and g.stat("test_accuracy")[2]]
    if not sparse:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for key in dict.fromkeys(curve_key(g) for g in sparse):
        members = sorted((g for g in sparse if curve_key(g) == key), key=lambda g: g.density)
        colour, marker = styles[key]
        means = [100 * g.stat("test_accuracy")[0] for g in members]
        stds = [100 * g.stat("test_accuracy")[1] for g in members]
        ax.errorbar([g.density for g in members], means, yerr=stds, color=colour,
                    marker=marker, capsize=3, label=key)
    for g in groups:
        mean, std, n = g.stat("test_accuracy")
        if g.density == "" and n:
            colour, _ = styles[curve_key(g)]
            ax.axhline(100 * mean, color=colour, linestyle="--", label=f"{curve_key(g)} "
                       f"(no density)")
            ax.axhspan(100 * (mean - std), 100 * (mean + std), color=colour, alpha=0.12)
    ax.set_xscale("log")
    ax.set_xlabel("target density (fraction of connections kept, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _png(fig)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, accuracy) that no other point beats: another point with
    cost ≤ and accuracy ≥, one of them strictly, dominates. Sorted by cost."""
    front = []
    for i, (c, a) in enumerate(points):
        dominated = any((c2 <= c and a2 >= a) and (c2 < c or a2 > a)
                        for j, (c2, a2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


COSTS = (("synops", "effective SynOps per test sample (log scale)", 1.0),
         ("energy_pj", "energy per test sample, nJ (log scale)", 1e-3))


def accuracy_vs_cost(groups: list[Group], styles: dict) -> Optional[bytes]:
    """Test accuracy vs effective SynOps and vs energy: one point per group (means, std
    bars), the Pareto front over the groups (fewest operations for the accuracy) drawn as a
    line through ringed points."""
    panels = []
    for column, xlabel, scale in COSTS:
        items = [g for g in groups if _finite(g.mean(column)) and _finite(g.mean("test_accuracy"))]
        if items:
            panels.append((column, xlabel, scale, items))
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    seen = set()
    for ax, (column, xlabel, scale, items) in zip(axes[0], panels):
        points = [(scale * g.mean(column), 100 * g.mean("test_accuracy")) for g in items]
        for g, (x, y) in zip(items, points):
            colour, marker = styles[curve_key(g)]
            key = curve_key(g)
            ax.errorbar(x, y, xerr=scale * g.stat(column)[1],
                        yerr=100 * g.stat("test_accuracy")[1], color=colour, marker=marker,
                        capsize=2, linestyle="none", label=None if key in seen else key)
            seen.add(key)
        front = pareto_front(points)
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="black",
                linewidth=1, linestyle=":", drawstyle="steps-post", zorder=0,
                label="Pareto front" if column == panels[0][0] else None)
        ax.scatter([points[i][0] for i in front], [points[i][1] for i in front], s=170,
                   facecolors="none", edgecolors="black", linewidths=1.2, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3, which="both")
    fig.legend(loc="lower center", ncol=min(4, len(seen) + 1), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.035 * math.ceil((len(seen) + 1) / 4), 1, 1))
    return _png(fig)


# ---------------------------------------------------------------------------- per density
def _panels(groups: list[Group], styles: dict, draw: Callable, ylabel: str, xlabel: str,
            with_undensed: bool, integer_x: bool = False) -> Optional[bytes]:
    """One panel per density column, the densest first (more than ``MAX_PANELS`` columns, e.g.
    a long lottery search: evenly spaced ones, the densest and the sparsest always in);
    ``draw(ax, group, colour, marker, label)`` returns True if it drew something.
    ``with_undensed``: the groups without a density (dense) are drawn in every panel."""
    columns = [d for d in densities(groups) if d != "" or not with_undensed]
    if with_undensed and not columns:
        columns = [""]
    columns = evenly_spaced(columns, MAX_PANELS)
    if not columns:
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.5 * nrows), squeeze=False)
    drawn_any, labels = False, {}
    for ax, column in zip(axes.flat, columns):
        members = [g for g in groups if g.density == column
                   or (with_undensed and g.density == "")]
        for g in members:
            colour, marker = styles[curve_key(g)]
            if draw(ax, g, colour, marker, curve_key(g)):
                drawn_any = True
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
        ax.set_title(_density_title(column), fontsize=10)
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(columns):]:
        ax.set_visible(False)
    if not drawn_any:
        plt.close(fig)
        return None
    rows_of_legend = math.ceil(len(labels) / 4)
    fig.legend(list(labels.values()), list(labels), loc="lower center", ncol=min(4, len(labels)),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, min(0.4, 0.06 * rows_of_legend / nrows + 0.02), 1, 1))
    return _png(fig)


def _mean_by(rows_per_seed: list[list[dict]], x: str, y: str) -> tuple[list, list]:
    """Mean of ``y`` over seeds at each ``x`` that every seed has (seeds share the schedule)."""
    tables = [{r[x]: r[y] for r in rows if _finite(r.get(x)) and _finite(r.get(y))}
              for rows in rows_per_seed]
    tables = [t for t in tables if t]
    if not tables:
        return [], []
    xs = sorted(set.intersection(*(set(t) for t in tables)))
    return xs, [sum(t[v] for t in tables) / len(tables) for v in xs]


def training_curves(data: SweepData, groups: list[Group], styles: dict) -> Optional[bytes]:
    """Validation accuracy (%) per epoch, mean over seeds, per group; a panel per density."""
    def draw(ax, g, colour, marker, label):
        xs, ys = _mean_by([data.history(r) for r in g.rows], "epoch", "val_accuracy")
        if not xs:
            return False
        style = "--" if g.density == "" else "-"
        ax.plot(xs, [100 * y for y in ys], color=colour, linestyle=style, label=label,
                marker=marker if len(xs) <= 12 else None, markersize=3)
        return True

    return _panels(groups, styles, draw, "validation accuracy (%)", "epoch", with_undensed=True,
                   integer_x=True)


def layer_density(data: SweepData, groups: list[Group], styles: dict) -> Optional[bytes]:
    """Per-layer mask density (metrics.json ``layer_mask_density``, mean over seeds): grouped
    bars, one group of bars per layer, a panel per target density."""
    sparse = [g for g in groups if g.density != ""]
    layers = {id(g): _mean_layers([data.metrics(r).get("layer_mask_density") for r in g.rows])
              for g in sparse}
    sparse = [g for g in sparse if layers[id(g)]]
    if not sparse:
        return None

    def draw(ax, g, colour, marker, label):
        values = layers[id(g)]
        members = [m for m in sparse if m.density == g.density]
        k, width = members.index(g), 0.8 / len(members)
        names = list(values)
        ax.bar([i - 0.4 + width * (k + 0.5) for i in range(len(names))], list(values.values()),
               width=width, color=colour, label=label)
        ax.set_xticks(range(len(names)), [_short(n) for n in names], rotation=30, ha="right",
                      fontsize=7)
        ax.set_ylim(0, 1.05)
        return True

    return _panels(sparse, styles, draw, "mask density", "", with_undensed=False)


def _mean_layers(per_seed: list) -> dict:
    """{layer: mean density} over the seeds that recorded one (layer order of the first)."""
    per_seed = [d for d in per_seed if isinstance(d, dict) and d]
    if not per_seed:
        return {}
    return {k: sum(d.get(k, 0.0) for d in per_seed) / len(per_seed) for k in per_seed[0]}


def _short(name: str) -> str:
    return name.removesuffix(".weight")


def topology_turnover(data: SweepData, groups: list[Group], styles: dict) -> Optional[bytes]:
    """rewiring.csv ``topology_change`` (fraction of the initial connections no longer present)
    against the optimizer step, mean over seeds, per rewiring method; a panel per density."""
    def draw(ax, g, colour, marker, label):
        xs, ys = _mean_by([data.rewiring(r) for r in g.rows], "step", "topology_change")
        if not xs:
            return False
        ax.plot(xs, ys, color=colour, marker=marker if len(xs) <= 15 else None, markersize=3,
                label=label)
        ax.set_ylim(bottom=0)
        return True

    sparse = [g for g in groups if g.density != ""]
    return _panels(sparse, styles, draw, "topology change", "optimizer step", with_undensed=False)
