"""Lottery cells of ``spikesculpt sweep`` (issue 13, item 2): one ticket search per strategy ×
seed, its rows (one per level and control, with the level's target density), reuse on a rerun,
resume of an interrupted search, lottery and method cells in one grid, two workers, and bad
input (one line, exit status 2, nothing written)."""

import csv
import json
import shutil
from pathlib import Path

import pytest
from cli_run import (
    assert_grid_refused,
    assert_sweep_refused,
    run_cli,
    sweep_at_one_thread,
)

from spikesculpt import TrainConfig, run_sweep
from spikesculpt.experiments.sweep import LocalExecutor, SweepGrid
from spikesculpt.experiments.sweep.lottery_cells import lottery_cells
from spikesculpt.experiments.train_run import build
from spikesculpt.sparse import Mask

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = "mnist1d:samples=600"
ROUNDS, RATE = 2, 0.5
LOTTERY = {"rounds": ROUNDS, "rate": RATE, "controls": ["reinit"]}
ARGV = ["--lottery", "imp", "--rounds", str(ROUNDS), "--rate", str(RATE), "--controls",
        "reinit", "--dataset", DATA, "--epochs", "2", "--seeds", "2", "--no-progress"]
# what must not change between two runs of the same search
SAME = ("method", "role", "level", "density_target", "seed", "run_dir", "test_accuracy",
        "val_accuracy", "density", "firing_rate", "best_epoch", "epochs_run")


def base_config():
    return TrainConfig(dataset=DATA, epochs=2)


def read_rows(folder):
    with open(Path(folder) / "cells.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def values(rows):
    return [{k: r[k] for k in SAME} for r in rows]


def stamps(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(Path(folder).glob("runs/**/*")) if p.is_file()}


def table_rows(printed):
    """The printed table's rows as (group label, density, n): ``("imp (reinit)", "0.5", "2")``."""
    lines = printed[printed.index("method  "):].splitlines()[1:]
    return [(line[:line.index("  ")], line.split()[-6], line.split()[-1])
            for line in lines if "%" in line]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """``spikesculpt sweep --lottery imp --rounds 2 --rate 0.5 --controls reinit``, 2 seeds."""
    out = tmp_path_factory.mktemp("lottery") / "sweep"
    return out, sweep_at_one_thread(ARGV, out)


def test_one_row_per_level_and_control_with_the_level_density(swept):
    out, _ = swept
    rows = read_rows(out)
    expected = [(seed, level, role) for seed in ("0", "1")
                for level in range(ROUNDS + 1)
                for role in (("",) if level == 0 else ("", "reinit"))]
    assert [(r["seed"], int(r["level"]), r["role"]) for r in rows] == expected
    for r in rows:
        level = int(r["level"])
        assert r["method"] == "imp" and r["status"] == "trained", r
        assert float(r["density_target"]) == pytest.approx((1 - RATE) ** level)
        assert float(r["density"]) == pytest.approx((1 - RATE) ** level, abs=0.01)
        folder = out / r["run_dir"]
        assert (folder / "metrics.json").is_file() and int(r["epochs_run"]) >= 1
        assert folder.name == (f"control_{r['role']}" if r["role"] else f"level_{level}")
        assert 0 <= float(r["test_accuracy"]) <= 1
        recorded = json.loads((folder / "metrics.json").read_text())
        assert float(r["test_accuracy"]) == recorded["test_accuracy"]
    searches = {Path(r["run_dir"]).parts[1] for r in rows}
    assert len(searches) == 2 and all(s.startswith("lottery-imp-mlp-") for s in searches)
    assert all((out / "runs" / s / "summary.json").is_file() for s in searches)


def test_lottery_rows_have_params_synops_and_energy(swept):
    """Each level and control records its parameter counts and efficiency as a training run
    does: ``params`` equals a count made from the level's mask on a freshly built model."""
    out, _ = swept
    model = build(base_config())[1]
    total = sum(p.numel() for p in model.parameters())
    for r in read_rows(out):
        mask = Mask.load(out / r["run_dir"] / "mask.safetensors")
        expected = total - sum(mask[n].numel() for n in mask) + sum(mask.active(n) for n in mask)
        assert int(r["params"]) == expected, r
        assert float(r["synops"]) > 0 and float(r["energy_pj"]) > 0, r
    sizes = {int(r["params"]) for r in read_rows(out)}
    assert len(sizes) == ROUNDS + 1  # each level prunes: fewer parameters per level


def test_the_table_separates_tickets_and_controls(swept):
    _, printed = swept
    assert table_rows(printed) == [("imp", "1", "2"), ("imp", "0.5", "2"),
                                   ("imp (reinit)", "0.5", "2"), ("imp", "0.25", "2"),
                                   ("imp (reinit)", "0.25", "2")]
    record = json.loads((swept[0] / "cells.json").read_text())
    assert record["grid"]["lottery"] == ["imp"]
    assert record["grid"]["lottery_options"] == LOTTERY
    assert record["grid"]["methods"] == [] and record["counts"] == {"trained": 10}


def test_rerun_reuses_every_search(swept):
    out, _ = swept
    before, record = stamps(out), (out / "sweep.yaml").read_text()
    again = run_sweep(base_config(), lottery=["imp"], lottery_options=LOTTERY, seeds=[0, 1],
                      out=str(out), progress=False)  # the API names the CLI's sweep
    assert {r["status"] for r in again.rows} == {"reused"} and len(again.rows) == 10
    assert stamps(out) == before and (out / "sweep.yaml").read_text() == record
    assert values(read_rows(out)) == values(
        [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in again.rows])


def test_an_interrupted_search_resumes(swept, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(swept[0], out)
    rows = read_rows(out)
    search = out / Path(rows[0]["run_dir"]).parent  # seed 0's search
    kept = {p: p.stat().st_mtime_ns for p in (search / "level_0", search / "level_1")
            for p in p.rglob("*") if p.is_file()}
    (search / "level_2" / "metrics.json").unlink()  # level 2 stopped before it finished
    (search / "summary.json").unlink()
    result = run_sweep(base_config(), lottery=["imp"], lottery_options=LOTTERY, seeds=2,
                       out=str(out), progress=False)
    assert [r["status"] for r in result.rows] == ["resumed"] * 5 + ["reused"] * 5
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished levels not recomputed
    assert values(read_rows(out)) == values(rows)  # seeded: the same numbers again


def test_methods_and_lottery_in_one_grid(swept, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(swept[0], out)
    code, err, printed = run_cli(["sweep", "--methods", "dense", *ARGV, "--out", str(out),
                                  "--force"], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert [(r["method"], r["status"]) for r in rows[:2]] == [("dense", "trained")] * 2
    assert rows[0]["role"] == rows[0]["level"] == ""
    assert {r["status"] for r in rows[2:]} == {"reused"} and len(rows) == 12
    assert table_rows(printed)[:2] == [("dense", "-", "2"), ("imp", "1", "2")]


def test_two_workers_run_searches_at_once_with_the_same_numbers(swept, tmp_path):
    result = run_sweep(base_config(), lottery=["imp"], lottery_options=LOTTERY, seeds=2,
                       out=str(tmp_path / "w2"), progress=False,
                       executor=LocalExecutor(workers=2, threads_per_worker=1))
    assert {r["status"] for r in result.rows} == {"trained"}
    assert values(read_rows(tmp_path / "w2")) == values(read_rows(swept[0]))


def test_grid_file_keys_vary_and_densities():
    grid = SweepGrid.from_mapping({"lottery": "imp", "lottery_options": {"rounds": 3},
                                   "densities": [0.5], "seeds": 2,
                                   "vary": {"lr": [1e-3, 1e-2], "sparse.grow": ["hebbian"]}},
                                  "g").validate()
    searches = lottery_cells(grid, TrainConfig())
    # densities do not apply, sparse.grow is not read: strategies × lr × seeds
    assert [(s.strategy, s.varied, s.seed) for s in searches] == [
        ("imp", {"lr": lr}, seed) for lr in (1e-3, 1e-2) for seed in (0, 1)]
    assert all(s.lottery.rounds == 3 and s.lottery.rate == 0.25 for s in searches)
    assert len({s.name for s in searches}) == 4
    assert "lottery" not in SweepGrid(methods=["dense"]).validate().to_dict()  # hash kept


@pytest.mark.parametrize("argv, word", [
    (["--lottery", "nope"], "unknown lottery strategy 'nope'"),
    (["--lottery", ""], "--lottery names no strategy"),
    (["--methods", "dense", "--rounds", "2"], "--rounds is an option of lottery cells"),
    (["--lottery", "imp", "--controls", "bogus"], "unknown control 'bogus'"),
    (["--lottery", "imp", "--rate", "1.5"], "rate must be in (0, 1)"),
    (["--lottery", "imp", "--binary-weights"], "--binary-weights applies to"),
    (["--lottery", "score", "--rescale"], "--rescale applies to the magnitude-pruning"),
    (["--lottery", "imp", "--min-inputs", "-1"], "min_inputs must be an integer >= 0"),
    (["--lottery", "imp", "--grow", "random"], "add --method"),
    (["--lottery", "imp", "--strategy", "imp"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, word):
    assert_sweep_refused(argv, word, tmp_path, capsys)


@pytest.mark.parametrize("text, word", [
    ("lottery: [imp]\nlottery_options: [rounds]\n", "lottery_options in"),
    ("lottery: [imp]\nlottery_options: {strategy: score}\n", "use lottery: [score]"),
    ("lottery: [imp]\nlottery_options: {nope: 1}\n", "unknown config key 'nope'"),
    ("methods: [dense]\nlottery_options: {rounds: 2}\n", "this sweep has none"),
    ("lottery: [imp, nope]\n", "unknown lottery strategy 'nope'"),
])
def test_bad_grid_file(tmp_path, capsys, text, word):
    assert_grid_refused(text, word, tmp_path, capsys)


def test_controls_without_lottery_is_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    code, err, _ = run_cli(["sweep", "--methods", "dense", "--controls", "reinit", "--out",
                            str(out)], capsys)
    assert code == 2 and len(err) == 1 and "--controls is an option of lottery cells" in err[0]
    assert not out.exists()
