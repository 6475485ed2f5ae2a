"""The sections of the report, as ``document`` blocks (the numbers are formatted here, once).

Order: how the sweep was made (commands, commit, versions, machine, wall time, cells), test
and validation accuracy per method × density, cost, paired differences vs the controls, the
figures, the failed cells. A section with nothing to show is left out.
"""

from __future__ import annotations

import math
from collections import Counter

from spikesculpt.experiments.sweep.report import plots
from spikesculpt.experiments.sweep.report.compare import Comparison, comparisons
from spikesculpt.experiments.sweep.report.document import (
    Bullets,
    Code,
    Figure,
    Paragraph,
    Section,
    Table,
)
from spikesculpt.experiments.sweep.report.groups import Group, densities
from spikesculpt.experiments.sweep.report.load import SweepData
from spikesculpt.metrics.stats import diff_ci, pct

HONEST = ("Test accuracy of the best-validation epoch; nothing here was chosen on test "
          "(each cell keeps the epoch of its best validation accuracy; any choice between "
          "settings must be made on the validation table).")
BASE_FIELDS = ("dataset", "model", "model_kwargs", "epochs", "timesteps", "batch_size", "lr",
               "optimizer", "schedule", "loss", "encoding", "val_fraction")


def build_sections(data: SweepData, groups: list[Group]) -> list[Section]:
    styles = plots.curve_styles(groups)
    sections = [provenance_section(data), *accuracy_sections(data, groups), cost_section(data,
                groups), comparison_section(comparisons(groups), data.vary_keys),
                figures_section(data, groups, styles), failed_section(data)]
    return [s for s in sections if s is not None and s.blocks]


# ---------------------------------------------------------------------------- provenance
def provenance_section(data: SweepData) -> Section:
    record, invocations = data.record, _invocations(data)
    commands = list(dict.fromkeys(i.get("command") for i in invocations if i.get("command")))
    if not commands and record.get("command"):
        commands = [record["command"]]
    blocks = [Paragraph("Commands that made this sweep (in order; rerun them to resume or "
                        "reproduce it):" if commands else
                        "The commands that made this sweep were not recorded (a sweep "
                        "directory written before spikesculpt recorded them).")]
    if commands:
        blocks.append(Code(commands))
    blocks.append(Paragraph("This report: " + f"spikesculpt report {data.path}"))
    blocks.append(Bullets(_facts(data, invocations)))
    return Section("How this sweep was made", blocks)


def _invocations(data: SweepData) -> list:
    found = data.header.get("invocations")
    return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []


def _facts(data: SweepData, invocations: list) -> list:
    record = data.record
    grid = data.header.get("grid") or record.get("grid") or {}
    base = data.header.get("base") or record.get("base") or {}
    metrics = [data.metrics(r) for r in data.finished]
    commits = _unique([record.get("commit"), *(i.get("commit") for i in invocations)])
    versions = _unique([f"spikesculpt {i.get('spikesculpt')}, torch {i.get('torch')}"
                        for i in invocations] or
                       [f"spikesculpt {m.get('spikesculpt')}, torch {m.get('torch')}"
                        for m in metrics if m])
    machines = _unique([_machine_text(i) for i in invocations])
    devices = _unique([m.get("device") for m in metrics if m])
    train_seconds = sum(r["train_seconds"] or 0.0 for r in data.finished)
    facts = [
        f"Sweep directory: {data.path} (sweep hash {record.get('sweep_hash', '?')})",
        "Grid: " + ", ".join(f"{k} {v}" for k, v in grid.items() if v not in ({}, [], None)),
        "Base config: " + ", ".join(f"{k} {base[k]}" for k in BASE_FIELDS if k in base),
        "Git commit: " + (", ".join(commits) or "not recorded"),
        "Versions: " + (", ".join(versions) or "not recorded"),
        "Machine: " + ("; ".join(machines) or "not recorded (sweep made before spikesculpt "
                       "recorded it)") + (f"; device {', '.join(devices)}" if devices else ""),
        f"Wall time: {_duration(train_seconds)} of training, summed over the "
        f"{len(data.finished)} finished cells (their train_seconds)"
        + (f"; the sweep command ran {_duration(_wall_seconds(invocations))}"
           f" in {len(invocations)} invocation(s)" if invocations else ""),
        "Cells: " + _cell_counts(data),
    ]
    return facts


def _machine_text(inv: dict) -> str:
    m = inv.get("machine") or {}
    cores = f"{m.get('cores')} cores, " if m.get("cores") else ""
    return (f"{m.get('cpu', 'unknown CPU')} ({cores}{m.get('logical_cpus')} logical CPUs), "
            f"{inv.get('workers')} worker(s) × {inv.get('torch_threads')} torch thread(s)")


def _cell_counts(data: SweepData) -> str:
    counts = Counter(r["status"] for r in data.rows)
    text = ", ".join(f"{n} {s}" for s, n in counts.items())
    missing = len(data.unfinished)
    tail = (f"; {missing} of {len(data.rows)} cells missing (not finished: see Failed cells)"
            if missing else f"; all {len(data.rows)} finished")
    return text + tail


def _unique(values) -> list:
    return [str(v) for v in dict.fromkeys(v for v in values if v not in (None, ""))]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)" if seconds < 7200 else \
        f"{seconds:.0f} s ({seconds / 3600:.2f} h)"


# ---------------------------------------------------------------------------- accuracy
def density_head(d) -> str:
    return "no density" if d == "" else f"{d:.3g}"   # 0.421875 (IMP level 3) -> 0.422


def curves(groups: list[Group]) -> list[tuple]:
    """(label, varied values) of each table row, in group order."""
    return list(dict.fromkeys((g.label, tuple(g.varied.items())) for g in groups))


def accuracy_table(groups: list[Group], vary_keys: list, column: str, caption: str) -> Table:
    """Rows: method (× varied values); columns: density; cells: mean ± std (n) in %."""
    columns = densities(groups)
    rows = []
    for label, varied in curves(groups):
        cells = []
        for d in columns:
            found = [g for g in groups if (g.label, tuple(g.varied.items())) == (label, varied)
                     and g.density == d]
            mean, std, n = found[0].stat(column) if found else (math.nan, math.nan, 0)
            cells.append(f"{pct(mean, std)} ({n})" if n else "")
        rows.append([label, *(_value(dict(varied).get(k, "")) for k in vary_keys), *cells])
    return Table(["method", *vary_keys, *(density_head(d) for d in columns)], rows, caption)


def accuracy_sections(data: SweepData, groups: list[Group]) -> list[Section]:
    keys = data.vary_keys
    return [Section("Accuracy per method × density", [
        Paragraph(HONEST),
        Paragraph("Mean ± sample std over seeds, in %, (n) = seeds that finished; columns are "
                  "the target density (fraction of connections kept; 'no density' for methods "
                  "that take none)."),
        accuracy_table(groups, keys, "test_accuracy", "Test accuracy (%)"),
        accuracy_table(groups, keys, "val_accuracy", "Validation accuracy (%), of the same "
                       "epoch: the number to choose settings on"),
    ])]


def _value(v) -> str:
    return "—" if v == "" else str(v)


# ---------------------------------------------------------------------------- cost
def cost_section(data: SweepData, groups: list[Group]) -> Section:
    with_params = any(r["params"] != "" for r in data.finished)
    head = ["method", *data.vary_keys, "target density", "measured density",
            *(["params"] if with_params else []), "SynOps / sample", "energy (nJ) / sample",
            "firing rate", "train s / cell", "n"]
    rows = []
    for g in groups:
        row = [g.label + (f" (level {g.level})" if g.is_lottery else ""),
               *(_value(g.varied.get(k, "")) for k in data.vary_keys),
               density_head(g.density), _fmt(g.mean("density"), ".4f")]
        if with_params:
            row.append(_fmt(g.mean("params"), ",.0f"))
        row += [_fmt(g.mean("synops"), ",.0f"), _fmt(g.mean("energy_pj") * 1e-3, ",.1f"),
                _fmt(g.mean("firing_rate"), ".3f"), _fmt(g.mean("train_seconds"), ".1f"),
                str(len(g.rows))]
        rows.append(row)
    return Section("Cost", [
        Paragraph("Means over seeds. Measured density: the mask density of methods that keep a "
                  "mask, else the fraction of nonzero weights. SynOps: effective synaptic "
                  "operations (ACs + MACs) per test sample over all time steps, zero weights and "
                  "silent inputs not counted; energy: the estimate of metrics.json per test "
                  "sample; firing rate: spikes per neuron per time step on the test split."),
        Table(head, rows)])


def _fmt(value, spec: str) -> str:
    return "—" if value is None or math.isnan(value) else format(value, spec)


# ---------------------------------------------------------------------------- comparisons
def comparison_section(found: list[Comparison], vary_keys: list) -> Section:
    if not found:
        return Section("Paired differences vs the controls")
    rows = [[c.group.label + (f" (level {c.group.level})" if c.group.is_lottery else ""),
             *(_value(c.group.varied.get(k, "")) for k in vary_keys), density_head(c.group.density),
             c.versus, diff_ci(c.difference), str(c.difference["n"]),
             _verdict(c.difference)] for c in found]
    return Section("Paired differences vs the controls", [
        Paragraph("Test accuracy of the group minus its control, in percentage points, over the "
                  "seeds both have (same seed: same data split and initialisation stream): mean "
                  "[95% Student-t interval, mean ± t(0.975, n−1)·sd/√n]. Controls: dense; "
                  "static at the same density; a smaller dense network with the same number of "
                  "connections; a lottery ticket's reinit and random-pruning controls; genetic "
                  "for lowrank."),
        Table(["method", *vary_keys, "density", "vs", "difference (points) [95% CI]", "n",
               "verdict"], rows, "Paired test-accuracy differences")])


def _verdict(d: dict) -> str:
    low, high = d["ci95"]
    if math.isnan(low):
        return "one seed: no interval"
    if low == high == 0:
        return "identical on every seed"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "not resolved"


# ---------------------------------------------------------------------------- figures
def figures_section(data: SweepData, groups: list[Group], styles: dict) -> Section:
    made = [
        (plots.accuracy_vs_density(groups, styles), "Test accuracy vs density",
         "Mean ± std over seeds; dashed lines: methods without a density (band: ± std)."),
        (plots.accuracy_vs_cost(groups, styles), "Test accuracy vs cost",
         ("One point per method × density (means, std bars); ringed points joined by the "
          "dotted line: the Pareto front (no other group is as accurate for fewer operations "
          "/ less energy).")),
        (plots.training_curves(data, groups, styles), "Training curves",
         ("Validation accuracy per epoch, mean over seeds; one panel per density, the "
          "methods without a density (dashed) in every panel.")),
        (plots.layer_density(data, groups, styles), "Per-layer mask density",
         ("Fraction of each prunable layer's connections kept (metrics.json "
          "layer_mask_density, mean over seeds).")),
        (plots.topology_turnover(data, groups, styles), "Topology turnover",
         ("Fraction of the initial connections no longer present, at each mask update "
          "(rewiring.csv topology_change, mean over seeds).")),
    ]
    return Section("Figures", [Figure(png, title, caption) for png, title, caption in made
                               if png is not None])


# ---------------------------------------------------------------------------- failures
def failed_section(data: SweepData) -> Section:
    rows = [[r["method"], r["role"] or "—", density_head(r["density_target"]), str(r["seed"]),
             *(_value(r.get(k, "")) for k in data.vary_keys), r["status"], r["run_dir"],
             r["error"] or "—"] for r in data.unfinished]
    if not rows:
        return Section("Failed cells")
    return Section("Failed cells", [
        Paragraph(f"{len(rows)} cell(s) did not finish and are left out of every number above; "
                  f"fix the cause and rerun the sweep command (finished cells are reused)."),
        Table(["method", "role", "density", "seed", *data.vary_keys, "status", "run dir",
               "error"], rows)])


def _wall_seconds(invocations: list) -> float:
    """Wall time of the sweep commands that reached their end (a killed one left no record)."""
    return sum(i.get("wall_seconds") or 0 for i in invocations)
