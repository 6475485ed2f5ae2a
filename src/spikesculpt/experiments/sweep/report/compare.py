"""The paired comparisons the report makes, each a difference in test accuracy over the seeds
two groups share (same seed = same data split and initialisation stream), with a 95%
Student-t interval (``metrics.stats.paired_difference``):

- every group vs ``dense`` (role "", no density); a lottery group in a sweep without a plain
  dense group: vs the same strategy's level 0 ticket;
- every sparse group (a density; not itself ``static``) vs ``static`` at the same density, and
  every sparse group vs ``dense (same connections)`` (role ``matched-dense``) at that density;
- lottery tickets vs their ``reinit`` and ``random`` controls at the same level;
- ``lowrank`` vs ``genetic``;
- ``genetic (evolved)`` (role ``evolved``: the final training of an evolved wiring rule) vs
  plain ``genetic`` (its default rule), same seed and varied values (e.g. ``genetic.gene_dim``).

A reference pairs with a group when their varied values agree on every key the reference
reads (``groups.varied_match``); a comparison with no shared seed is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikesculpt.experiments.sweep.report.groups import Group, same_density, varied_match
from spikesculpt.metrics.stats import paired_difference


@dataclass
class Comparison:
    group: Group
    reference: Group
    versus: str                    # what the reference is, in words
    difference: dict               # paired_difference of test accuracy (fractions)


def _is_plain_dense(g: Group) -> bool:
    return g.method == "dense" and g.role == "" and g.density == "" and not g.is_lottery


def _is_sparse(g: Group) -> bool:
    return g.density != "" and g.role == "" and g.method != "dense"


def references(group: Group, groups: list[Group]) -> list[tuple[Group, str]]:
    """(reference group, what it is) for every comparison ``group`` gets (see module doc)."""
    def find(test):
        return [r for r in groups if r is not group and test(r) and varied_match(group, r)]

    out = []
    if not _is_plain_dense(group):
        dense = find(_is_plain_dense)
        if dense:
            out.append((dense[0], "dense"))
        elif group.is_lottery and group.level != 0:
            out += [(r, "level 0 (dense)") for r in find(
                lambda r: r.is_lottery and r.method == group.method and r.level == 0
                and r.role == "")[:1]]
    if _is_sparse(group) and group.role == "":
        if group.method != "static":
            out += [(r, "static, same density") for r in find(
                lambda r: r.method == "static" and r.role == "" and not r.is_lottery
                and same_density(r.density, group.density))[:1]]
        out += [(r, "dense (same connections)") for r in find(
            lambda r: r.role == "matched-dense" and same_density(r.density, group.density))[:1]]
    if group.is_lottery and group.role == "":
        for role, words in (("reinit", "reinit control"), ("random", "random-pruning control")):
            out += [(r, words) for r in find(
                lambda r, role=role: r.is_lottery and r.method == group.method
                and r.level == group.level and r.role == role)[:1]]
    if group.method == "lowrank" and group.role == "":
        out += [(r, "genetic") for r in find(lambda r: r.method == "genetic" and r.role == "")[:1]]
    if group.method == "genetic" and group.role == "evolved":
        out += [(r, "genetic (default rule)") for r in find(
            lambda r: r.method == "genetic" and r.role == "" and not r.is_lottery)[:1]]
    return out


def comparisons(groups: list[Group]) -> list[Comparison]:
    """Every comparison of every group, in group order."""
    out = []
    for group in groups:
        for reference, versus in references(group, groups):
            d = paired_difference(group.by_seed(), reference.by_seed())
            if d is not None:
                out.append(Comparison(group, reference, versus, d))
    return out
