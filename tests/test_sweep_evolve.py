"""Evolve cells of ``spikesculpt sweep`` (issue 13, item 2): one evolution per seed, its row (the
final training, ``genetic`` / ``evolved``), reuse on a rerun, resume of an interrupted evolution,
the report's evolved group and its pairing with plain ``genetic``, and bad input (one line, exit
status 2, nothing written)."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from cli_run import assert_grid_refused, assert_sweep_refused, sweep_at_one_thread

from spikesculpt import TrainConfig, run_sweep
from spikesculpt.experiments.evolution import evolution as evolution_module
from spikesculpt.experiments.sweep import SweepGrid
from spikesculpt.experiments.sweep.evolve_cells import evolve_cells

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = "mnist1d:samples=600"
EVOLVE = {"population": 2, "generations": 1, "eval_epochs": 1}
ARGV = ["--methods", "genetic", "--evolve", "--population", "2", "--generations", "1",
        "--eval-epochs", "1", "--dataset", DATA, "--epochs", "2", "--seeds", "2",
        "--no-progress"]
SAME = ("method", "role", "seed", "run_dir", "test_accuracy", "val_accuracy", "params",
        "synops", "best_epoch", "epochs_run")


def read_rows(folder):
    with open(Path(folder) / "cells.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def stamps(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(Path(folder).glob("runs/**/*")) if p.is_file()}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """``spikesculpt sweep --methods genetic --evolve --population 2 --generations 1``, 2 seeds."""
    out = tmp_path_factory.mktemp("evolve") / "sweep"
    return out, sweep_at_one_thread(ARGV, out)


def test_one_row_per_evolution_from_its_final_training(swept):
    out, printed = swept
    rows = read_rows(out)
    assert [(r["method"], r["role"], r["seed"]) for r in rows] == [
        ("genetic", "", "0"), ("genetic", "", "1"),
        ("genetic", "evolved", "0"), ("genetic", "evolved", "1")]
    for r in rows[2:]:
        folder = out / r["run_dir"]
        assert r["status"] == "trained" and folder.name == "final", r
        assert folder.parent.name.startswith("evolve-mlp-") and folder.parent.parent == out / "runs"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert float(r["test_accuracy"]) == metrics["test_accuracy"]
        assert int(r["params"]) == metrics["params_total"] and float(r["synops"]) > 0
        assert int(r["epochs_run"]) == 2 and r["density_target"] == ""
        summary = json.loads((folder.parent / "evolution.json").read_text())
        assert len(summary["generations"]) == 1 and summary["final"]["test_accuracy"] == \
            metrics["test_accuracy"]
        # the final training starts from the evolved rule (the best genome of the search)
        final_config = yaml.safe_load((folder / "config.yaml").read_text())
        assert summary["best"]["genome"] == json.loads(json.dumps(
            final_config["config"]["genetic"]["genome"]))
    assert rows[2]["run_dir"] != rows[3]["run_dir"]  # one evolution per seed
    assert "genetic (evolved)" in printed
    record = json.loads((out / "cells.json").read_text())
    assert record["grid"]["evolve"] is True and record["grid"]["evolve_options"] == EVOLVE


def test_rerun_reuses_every_evolution(swept):
    out, _ = swept
    before = stamps(out)
    again = run_sweep(TrainConfig(dataset=DATA, epochs=2), methods=["genetic"], seeds=2,
                      evolve=True, evolve_options=EVOLVE, out=str(out), progress=False)
    assert {r["status"] for r in again.rows} == {"reused"} and len(again.rows) == 4
    assert stamps(out) == before
    assert [{k: r[k] for k in SAME} for r in read_rows(out)] == [
        {k: ("" if r[k] is None else str(r[k])) for k in SAME} for r in again.rows]


def test_an_interrupted_evolution_resumes_without_searching_again(swept, tmp_path, monkeypatch):
    """The final training fails once (after the generations were saved): the cell is
    ``failed``; the rerun resumes it — the search is not run again, the final training is."""
    out = tmp_path / "copy"
    shutil.copytree(swept[0], out)
    evolution = out / read_rows(out)[2]["run_dir"]
    shutil.rmtree(evolution.parent)  # seed 0's evolution runs again, and is interrupted
    original = evolution_module.run_training

    def broken(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(evolution_module, "run_training", broken)
    kwargs = {"methods": ["genetic"], "seeds": 2, "evolve": True, "evolve_options": EVOLVE,
              "out": str(out), "progress": False, "report": False}
    first = run_sweep(TrainConfig(dataset=DATA, epochs=2), **kwargs)
    assert [r["status"] for r in first.rows] == ["reused", "reused", "failed", "reused"]
    assert "power cut" in first.rows[2]["error"]
    searched = (evolution.parent / "candidates.csv").stat().st_mtime_ns
    monkeypatch.setattr(evolution_module, "run_training", original)
    again = run_sweep(TrainConfig(dataset=DATA, epochs=2), **kwargs)
    assert [r["status"] for r in again.rows] == ["reused", "reused", "resumed", "reused"]
    assert (evolution.parent / "candidates.csv").stat().st_mtime_ns == searched
    assert again.rows[2]["test_accuracy"] == pytest.approx(
        float(read_rows(swept[0])[2]["test_accuracy"]))  # seeded: the same final training


def test_the_report_pairs_evolved_with_plain_genetic(swept):
    out, _ = swept
    report = (out / "report.md").read_text()
    assert "genetic (evolved)" in report
    pairing = [line for line in report.splitlines()
               if line.startswith("| genetic (evolved)") and "genetic (default rule)" in line]
    assert len(pairing) == 1 and pairing[0].count("|") > 4
    assert "genetic (evolved)" in (out / "report.html").read_text()


def test_grid_file_forms_and_vary():
    short = SweepGrid.from_mapping({"evolve": {"population": 3}, "seeds": 2,
                                    "vary": {"genetic.gene_dim": [2, 4],
                                             "sparse.grow": ["hebbian"]}}, "g").validate()
    long = SweepGrid.from_mapping({"evolve": True, "evolve_options": {"population": 3},
                                   "seeds": 2, "vary": {"genetic.gene_dim": [2, 4],
                                                        "sparse.grow": ["hebbian"]}},
                                  "g").validate()
    assert short.to_dict() == long.to_dict()
    cells = evolve_cells(short, TrainConfig())
    # densities and sparse.grow do not apply: gene_dim × seeds
    assert [(c.varied, c.seed) for c in cells] == [
        ({"genetic.gene_dim": g}, s) for g in (2, 4) for s in (0, 1)]
    assert all(c.evolution.population == 3 and c.evolution.workers == 1 for c in cells)
    assert len({c.name for c in cells}) == 4
    assert "evolve" not in SweepGrid(methods=["dense"]).validate().to_dict()  # hash kept


@pytest.mark.parametrize("argv, word", [
    (["--methods", "genetic", "--population", "2"], "--population is an option of evolve cells"),
    (["--evolve", "--population", "1"], "population must be an integer >= 2"),
    (["--evolve", "--eval-epochs", "0"], "eval epochs must be an integer >= 1"),
    (["--evolve", "--search", "nope"], "nope"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, word):
    assert_sweep_refused(argv, word, tmp_path, capsys)


@pytest.mark.parametrize("text, word", [
    ("evolve: {popsize: 2}\n", "unknown config key 'popsize'"),
    ("evolve: true\nevolve_options: {workers: 2}\n", "evolve option 'workers' is set by the sweep"),
    ("evolve: {population: 2}\nevolve_options: {generations: 1}\n", "evolve options twice"),
    ("methods: [dense]\nevolve_options: {population: 2}\n", "has no evolve cells"),
    ("evolve: maybe\n", "evolve in"),
])
def test_bad_grid_file(tmp_path, capsys, text, word):
    assert_grid_refused(text, word, tmp_path, capsys)
