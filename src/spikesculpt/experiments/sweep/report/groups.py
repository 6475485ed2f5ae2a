"""Cells that differ only in their seed form a *group*; a group's numbers over its seeds.

Group key: (method, role, lottery level, density target, the varied values). Groups keep the
order of the grid (first appearance in cells.csv). Only finished cells enter a group.

Roles (the row contract of issue 13): ``""`` an ordinary cell; ``matched-dense`` the dense
control with as many connections as the sparse cells of its density; lottery rows (a ``level``)
are tickets (``""``) or their ``reinit`` / ``random`` controls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spikesculpt.metrics.stats import mean_std

ROLE_LABELS = {"matched-dense": "dense (same connections)"}
LOTTERY_ROLE_LABELS = {"": "ticket", "reinit": "reinit control",
                       "random": "random-pruning control"}


@dataclass
class Group:
    method: str
    role: str
    level: object                  # "" or the lottery level (int)
    density: object                # "" or the target density
    varied: dict                   # {vary key: value}, "" where the method does not read it
    rows: list = field(default_factory=list)

    @property
    def is_lottery(self) -> bool:
        return self.level != ""

    @property
    def label(self) -> str:
        """What the tables call the group: ``dense``, ``esl``, ``dense (same connections)``,
        ``imp ticket``, ``imp reinit control`` (density and varied values are columns)."""
        if self.is_lottery:
            return f"{self.method} {LOTTERY_ROLE_LABELS.get(self.role, self.role)}"
        if self.role:
            return ROLE_LABELS.get(self.role, f"{self.method} ({self.role})")
        return self.method

    @property
    def varied_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.varied.items() if v != "")

    @property
    def full_label(self) -> str:
        """The label with the lottery level and the varied values (legends of the plots)."""
        extra = [f"level {self.level}"] if self.is_lottery else []
        extra += [self.varied_text] if self.varied_text else []
        return f"{self.label} ({'; '.join(extra)})" if extra else self.label

    def by_seed(self, column: str = "test_accuracy") -> dict:
        """{seed: value} of ``column`` over the group's cells (empty values left out: None, or
        "" where a column such as ``params`` is absent for this kind of cell)."""
        return {r["seed"]: r[column] for r in self.rows if r.get(column) not in (None, "")}

    def stat(self, column: str) -> tuple[float, float, int]:
        """(mean, sample std, n) of ``column`` over the seeds (nan, nan, 0 if no value)."""
        values = list(self.by_seed(column).values())
        mean, std = mean_std(values)
        return mean, std, len(values)

    def mean(self, column: str) -> float:
        return self.stat(column)[0]


def group_key(row: dict, vary_keys: list) -> tuple:
    return (row["method"], row["role"], row["level"], row["density_target"],
            *(_hashable(row.get(k, "")) for k in vary_keys))


def make_groups(rows: list, vary_keys: list) -> list[Group]:
    """The groups of the finished ``rows`` (see the module doc), grid order."""
    groups: dict[tuple, Group] = {}
    for row in rows:
        key = group_key(row, vary_keys)
        if key not in groups:
            groups[key] = Group(row["method"], row["role"], row["level"], row["density_target"],
                                {k: row.get(k, "") for k in vary_keys})
        groups[key].rows.append(row)
    return list(groups.values())


def densities(groups: list[Group]) -> list:
    """The density columns: "" (no density) first if any group has none, then descending."""
    values = sorted({g.density for g in groups if g.density != ""}, reverse=True)
    return ([""] if any(g.density == "" for g in groups) else []) + values


def same_density(a, b) -> bool:
    if a == "" or b == "":
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def varied_match(group: Group, reference: Group) -> bool:
    """Whether ``reference`` pairs with ``group`` on the varied values: equal on every key the
    reference reads (a key it does not read, "" in its rows, matches any value)."""
    return all(v == "" or group.varied.get(k, "") == v for k, v in reference.varied.items())


def _hashable(value):
    return repr(value) if isinstance(value, (list, dict)) else value
