"""``spikesculpt sweep`` / ``run_sweep`` (issue 13, item 2): the grid and its cells, a real small
sweep on digits, reuse on a rerun, resume after an interruption, workers, busy and failed cells,
and bad input (one line, exit status 2, nothing written)."""

import csv
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch
from cli_run import assert_grid_refused, assert_sweep_refused, run_cli

import spikesculpt
from spikesculpt import TrainConfig, run_sweep
from spikesculpt.experiments import train_run
from spikesculpt.experiments.rundir import RunLock
from spikesculpt.experiments.sweep import LocalExecutor, SweepGrid, cell_run
from spikesculpt.experiments.sweep import run as sweep_run

pytestmark = pytest.mark.usefixtures("one_thread")

# 3 epochs of an MLP on digits at lr 1e-2: ~91-96% test accuracy for dense and ESL at 0.2
# (measured: dense 93.9 / 94.4%, ESL 91.4 / 95.8% on seeds 0 / 1); chance is 10%.
BASE = dict(epochs=3, lr=1e-2)
ACCURACY_FLOOR = 0.6
SAME = ("test_accuracy", "val_accuracy", "density", "firing_rate", "synops", "energy_pj",
        "best_epoch", "epochs_run", "method", "density_target", "seed", "run_dir")


def base_config():
    return TrainConfig(**BASE)


def read_rows(folder):
    with open(Path(folder) / "cells.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def values(rows):
    return [{k: r[k] for k in SAME} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """dense, esl × density 0.2 × seeds 0, 1; trained once for the tests of this file."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("sweep") / "ref"
    try:
        result = run_sweep(base_config(), ["dense", "esl"], densities=[0.2], seeds=2,
                           out=str(out), progress=False)
    finally:
        torch.set_num_threads(threads)
    return result


def test_grid_dense_gets_one_cell_per_seed():
    grid = SweepGrid(methods=["dense", "esl", "static"], densities=[0.5, 0.1], seeds=3,
                     vary={"sparse.grow": ["random", "hebbian"], "lr": [1e-3]})
    cells = grid.cells(TrainConfig())
    dense = [c for c in cells if c.method == "dense"]
    assert [(c.density, c.seed) for c in dense] == [(None, 0), (None, 1), (None, 2)]
    assert all(c.varied == {"lr": 1e-3} for c in dense)  # dense does not read sparse.grow
    esl = [c for c in cells if c.method == "esl"]
    assert len(esl) == 2 * 2 * 3 and esl[0].config.sparse.density == 0.5
    assert [(c.density, c.varied["sparse.grow"], c.seed) for c in esl[:4]] == [
        (0.5, "random", 0), (0.5, "random", 1), (0.5, "random", 2), (0.5, "hebbian", 0)]
    assert len(cells) == 3 + 12 + 12
    assert SweepGrid(methods="dense", seeds=[3, 0, 3]).seed_list() == [3, 0]


def test_small_sweep_reaches_the_floor_and_writes_its_cells(reference):
    rows = read_rows(reference.path)
    assert [(r["method"], r["density_target"], r["seed"]) for r in rows] == [
        ("dense", "", "0"), ("dense", "", "1"), ("esl", "0.2", "0"), ("esl", "0.2", "1")]
    assert all(r["status"] == "trained" for r in rows)
    for r in rows:
        assert float(r["test_accuracy"]) > ACCURACY_FLOOR, r
        assert (reference.path / r["run_dir"] / "metrics.json").is_file()
        assert int(r["epochs_run"]) == 3 and float(r["synops"]) > 0
    assert abs(float(rows[2]["density"]) - 0.2) < 0.01 and float(rows[0]["density"]) == 1.0
    record = json.loads((reference.path / "cells.json").read_text())
    assert [c["status"] for c in record["cells"]] == ["trained"] * 4
    assert record["grid"] == {"methods": ["dense", "esl"], "densities": [0.2], "seeds": 2,
                              "vary": {}}


def test_rerun_retrains_nothing(reference):
    metrics = sorted(reference.path.glob("runs/*/metrics.json"))
    stamps = [p.stat().st_mtime_ns for p in metrics]
    record = (reference.path / "sweep.yaml").read_text()
    again = run_sweep(base_config(), ["dense", "esl"], densities=[0.2], seeds=[0, 1],
                      out=str(reference.path), progress=False)  # seeds 2 = seeds [0, 1]
    assert [r["status"] for r in again.rows] == ["reused"] * 4
    assert [p.stat().st_mtime_ns for p in metrics] == stamps
    assert (reference.path / "sweep.yaml").read_text() == record
    assert values(read_rows(reference.path)) == values(reference_rows(reference))


def reference_rows(reference):
    return [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in reference.rows]


def test_interrupted_sweep_resumes_to_the_same_cells(reference, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    original = train_run._save_checkpoint
    saved = []

    def stop_in_third_cell(run, trainer):
        original(run, trainer)
        saved.append(run.path)
        if len(saved) == 7:  # epoch 1 of the third cell (3 epochs per cell)
            raise KeyboardInterrupt

    monkeypatch.setattr(train_run, "_save_checkpoint", stop_in_third_cell)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(base_config(), ["dense", "esl"], densities=[0.2], seeds=2, out=str(out),
                  progress=False)
    monkeypatch.setattr(train_run, "_save_checkpoint", original)
    third = saved[-1]
    assert (third / "checkpoint.pt").is_file() and not (third / "metrics.json").exists()
    assert not (out / "cells.csv").exists()
    result = run_sweep(base_config(), ["dense", "esl"], densities=[0.2], seeds=2, out=str(out),
                       progress=False)
    assert [r["status"] for r in result.rows] == ["reused", "reused", "resumed", "trained"]
    assert values(read_rows(out)) == values(read_rows(reference.path))


def test_two_workers_give_the_same_numbers(reference, tmp_path):
    """Two spawned workers with one torch thread each: the same numbers as one thread here."""
    result = run_sweep(base_config(), ["dense", "esl"], densities=[0.2], seeds=[1],
                       out=str(tmp_path / "w2"), progress=False,
                       executor=LocalExecutor(workers=2, threads_per_worker=1))
    assert [r["status"] for r in result.rows] == ["trained", "trained"]
    seed1 = [r for r in read_rows(reference.path) if r["seed"] == "1"]
    assert values(read_rows(tmp_path / "w2")) == values(seed1)


def test_force_replaces_the_grid_and_reuses_cells(reference, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(reference.path, out)
    before = (out / "sweep.yaml").read_text()
    code = run_cli(["sweep", "--methods", "esl", "--densities", "0.2", "--seeds", "1,",
                    "--epochs", "3", "--lr", "1e-2", "--out", str(out), "--no-progress"],
                   capsys)[0]
    assert code == 2 and (out / "sweep.yaml").read_text() == before  # another grid: refused
    code, err, printed = run_cli(["sweep", "--methods", "esl", "--densities", "0.2", "--seeds",
                                  "1,", "--epochs", "3", "--lr", "1e-2", "--out", str(out),
                                  "--force", "--no-progress"], capsys)
    assert code == 0, err
    assert [r["status"] for r in read_rows(out)] == ["reused"]
    assert "seeds:\n  - 1" in (out / "sweep.yaml").read_text()
    assert "esl" in printed and str(out / "cells.csv") in printed


def test_a_failed_cell_is_recorded_and_the_others_go_on(reference, tmp_path, capsys,
                                                        monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(reference.path, out)
    shutil.rmtree(out / read_rows(out)[2]["run_dir"])  # esl seed 0 must train again

    def broken(config, **kwargs):
        if config.method == "esl" and config.seed == 0:
            raise RuntimeError("boom\nsecond line")
        return train_run.run_training(config, **kwargs)

    monkeypatch.setattr(cell_run, "run_training", broken)
    code, err, _ = run_cli(["sweep", "--densities", "0.2", "--seeds", "2", "--epochs", "3",
                            "--lr", "1e-2", "--out", str(out), "--no-progress"], capsys)
    assert code == 1
    assert "failed cell esl density 0.2 seed 0" in err[0] and "RuntimeError: boom" in err[0]
    assert "1 of 4 cells failed" in err[-1]
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["reused", "reused", "failed", "reused"]
    assert rows[2]["error"] == "RuntimeError: boom second line"


def test_a_busy_cell_is_tried_again_once_free(reference, tmp_path, monkeypatch):
    """A cell another process writes (its lock held) waits, then is read back."""
    out = tmp_path / "copy"
    shutil.copytree(reference.path, out)
    cell = out / read_rows(out)[1]["run_dir"]
    shutil.rmtree(cell)
    lock = RunLock(cell).acquire()
    threading.Timer(1.0, lock.release).start()
    monkeypatch.setattr(sweep_run, "BUSY_POLL_SECONDS", 0.2)
    result = run_sweep(base_config(), ["dense", "esl"], densities=[0.2], seeds=2, out=str(out),
                       progress=False)
    assert [r["status"] for r in result.rows] == ["reused", "trained", "reused", "reused"]
    assert values(read_rows(out)) == values(read_rows(reference.path))



@pytest.mark.parametrize("argv, word", [
    (["--methods", "dense,nope"], "unknown method 'nope'"),
    (["--methods", ""], "names no method"),
    (["--methods", " , "], "names no method"),
    (["--densities", "0,0.1"], "outside (0, 1]"),
    (["--densities", "1.5"], "outside (0, 1]"),
    (["--densities", "nan"], "outside (0, 1]"),
    (["--densities", "abc"], "is not a number"),
    (["--seeds", "0"], "seeds must be a positive count"),
    (["--seeds", "-2"], "seeds must be a positive count"),
    (["--seeds", "1,-2"], "seed -2 is not an integer"),
    (["--seeds", "two"], "not a count or a list"),
    (["--vary", "nope=[1,2]"], "unknown vary field 'nope'"),
    (["--vary", "neuron.nope=[1,2]"], "unknown vary field 'neuron.nope'"),
    (["--vary", "lr=0.1"], "needs a non-empty list"),
    (["--vary", "seed=[1,2]"], "use seeds instead"),
    (["--vary", "sparse.density=[0.1]"], "use densities instead"),
    (["--vary", "epochs=[2,x]"], "must be a int"),
    (["--methods", "dense", "--grow", "random"], "add --method"),
    (["--density", "0.1"], "unrecognized arguments"),
    (["--methods", "ticket"], "mask"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, word):
    assert_sweep_refused(argv, word, tmp_path, capsys)


@pytest.mark.parametrize("text, word", [
    ("- dense\n- esl\n", "must be a YAML mapping"),
    ("methods: [dense]\ndensity: [0.1]\n", "unknown key 'density'"),
    ("methods: [dense]\nvary: {nope: [1]}\n", "unknown vary field 'nope'"),
    ("methods: [dense]\nvary: [lr]\n", "vary must be a mapping"),
    ("methods: []\n", "names no method"),
    ("methods: [dense]\nseeds: 0\n", "positive count"),
])
def test_bad_grid_file(tmp_path, capsys, text, word):
    assert_grid_refused(text, word, tmp_path, capsys)


def test_out_that_is_a_file_or_a_folder_of_other_files(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    code, err, _ = run_cli(["sweep", "--out", str(a_file)], capsys)
    assert code == 2 and len(err) == 1 and "is a file" in err[0]
    assert a_file.read_text() == "mine"
    code, err, _ = run_cli(["sweep", "--out", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and "holds no sweep.yaml" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_grid_file_and_api_export():
    assert spikesculpt.run_sweep is run_sweep and "run_sweep" in spikesculpt.__all__
    grid = SweepGrid.from_mapping({"methods": ["dense", "esl"], "densities": [0.5],
                                   "seeds": [0, 3], "vary": {"neuron.tau": [2.0, 4.0]}}, "g")
    cells = grid.cells(TrainConfig())
    assert len(cells) == 2 * 2 * 2 and {c.config.neuron.tau for c in cells} == {2.0, 4.0}
