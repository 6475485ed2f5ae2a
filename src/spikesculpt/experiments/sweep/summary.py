"""Test accuracy over seeds per (method, role, density, varied values): mean ± std and n.

The std is the sample standard deviation (n - 1), 0 for a single seed; only finished cells
count (a failed cell is left out of n). Groups keep the order of the grid.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class GroupSummary:
    method: str
    density: object            # the target density, or "" for a method that takes none
    varied: dict
    mean: float                # test accuracy, fraction in [0, 1]
    std: float
    n: int
    role: str = ""             # "" or a control's role (lottery: reinit, random)


def summarize(rows: list[dict], vary_keys: list[str]) -> list[GroupSummary]:
    """One ``GroupSummary`` per group of cells that differ only in their seed."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        key = (row["method"], row.get("role") or "", row["density_target"],
               *(row.get(k, "") for k in vary_keys))
        values = groups.setdefault(key, [])
        if row["status"] != "failed" and row.get("test_accuracy") is not None:
            values.append(float(row["test_accuracy"]))
    out = []
    for key, values in groups.items():
        mean = statistics.fmean(values) if values else float("nan")
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(GroupSummary(key[0], key[2], dict(zip(vary_keys, key[3:])), mean, std,
                                len(values), role=key[1]))
    return out


def format_table(groups: list[GroupSummary], vary_keys: list[str]) -> str:
    """A compact text table: method, density, varied values, test accuracy mean ± std (%), n."""
    head = ["method", "density", *vary_keys, "test acc (mean ± std)", "n"]
    lines = [[g.method + (f" ({g.role})" if g.role else ""),
              "-" if g.density in ("", None) else f"{g.density:g}",
              *(str(g.varied.get(k, "")) or "-" for k in vary_keys),
              "failed" if g.n == 0 else f"{100 * g.mean:6.2f} ± {100 * g.std:5.2f} %", str(g.n)]
             for g in groups]
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in [head, *lines])
