"""Sweep control cells and the ``params`` column (issue 13, items 3-4): ``matched-dense`` — a
dense model narrowed to the connections the sparse cells keep — checked against a brute-force
count over every hidden size; the cells in a real small sweep (role, width, reuse); the
``params`` column against the trained model's own count; bad control names."""

import copy
import csv
import json
from pathlib import Path

import pytest
import torch
from cli_run import run_cli

from spikesculpt import TrainConfig, run_sweep
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.experiments.sweep import SweepGrid
from spikesculpt.experiments.sweep.controls import matched_dense_config
from spikesculpt.experiments.train_run import (
    build,
    build_model,
    load_model_weights,
    load_run_config,
)
from spikesculpt.models import MODELS, prunable_parameters

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = "mnist1d:samples=600"
HIDDEN = 48


def base_config(**kwargs) -> TrainConfig:
    return TrainConfig(dataset=DATA, epochs=2, model_kwargs={"hidden": [HIDDEN, HIDDEN]},
                       **kwargs)


def connections(config: TrainConfig, **model_kwargs) -> int:
    """Prunable weights of the real (not meta) model of ``config`` with ``model_kwargs``."""
    info = load_dataset(DATA, seed=0).info
    config = copy.deepcopy(config)
    config.model_kwargs = {**config.model_kwargs, **model_kwargs}
    return sum(p.numel() for _, p in prunable_parameters(build_model(config, info)))


@pytest.mark.parametrize("density", [0.5, 0.2, 0.1, 0.05])
def test_matched_dense_is_the_nearest_count_any_hidden_size_gives(density):
    config = base_config()
    full = connections(config)
    narrowed, count, target = matched_dense_config(config, density)
    assert target == round(density * full)
    assert count == connections(narrowed)  # the meta-device count is the real model's
    # oracle: every hidden size h (both layers h wide) an MLP of this shape can have
    reachable = [connections(config, hidden=[h, h]) for h in range(1, HIDDEN + 1)]
    assert abs(count - target) == min(abs(c - target) for c in reachable)
    assert 0 < narrowed.model_kwargs["width"] < 1
    assert len(repr(narrowed.model_kwargs["width"])) <= 6  # the shortest decimal, e.g. 0.43


def test_matched_dense_narrows_a_conv_model_too():
    config = TrainConfig(dataset="digits", model="conv")
    narrowed, count, target = matched_dense_config(config, 0.25)
    info = load_dataset("digits", seed=0).info
    model = build_model(narrowed, info)
    assert count == sum(p.numel() for _, p in prunable_parameters(model))
    assert abs(count - target) <= 0.1 * target


def test_a_model_without_width_is_one_line(monkeypatch):
    def nowidth(*, in_channels, image_size, num_classes, neuron, in_features=None):
        return torch.nn.Linear(in_features or 1, num_classes)

    monkeypatch.setitem(MODELS._items, "nowidth", nowidth)
    grid = SweepGrid(methods=["dense"], densities=[0.5], controls=["matched-dense"])
    with pytest.raises(UserError, match="has none \\(models with one: .*mlp"):
        grid.cells(TrainConfig(dataset=DATA, model="nowidth"))


def read_rows(folder: Path) -> list[dict]:
    with open(folder / "cells.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def trained_count(run_dir: Path) -> int:
    """Oracle for ``params``: the finished run's model, reloaded; every parameter counts except
    the prunable weights that are exactly zero (pruned)."""
    run, config = load_run_config(run_dir)
    _, model, _ = build(config)
    load_model_weights(run.model_path, model)
    prunable = {id(p) for _, p in prunable_parameters(model)}
    return sum(int((p != 0).sum()) if id(p) in prunable else p.numel()
               for p in model.parameters())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("controls") / "sweep"
    try:
        result = run_sweep(base_config(), ["dense", "static", "genetic", "lowrank"],
                           densities=[0.2], seeds=1, out=str(out), progress=False,
                           controls=["matched-dense"])
    finally:
        torch.set_num_threads(threads)
    return result


def test_matched_dense_cells_appear_with_their_role_and_width(sweep):
    rows = read_rows(sweep.path)
    assert [(r["method"], r["role"], r["density_target"]) for r in rows] == [
        ("dense", "", ""), ("static", "", "0.2"), ("genetic", "", ""), ("lowrank", "", ""),
        ("dense", "matched-dense", "0.2")]
    assert all(r["status"] == "trained" for r in rows)
    matched, static = rows[-1], rows[1]
    stored = (sweep.path / matched["run_dir"] / "config.yaml").read_text()
    assert f"width: {matched['width']}" in stored and rows[0]["width"] == ""
    metrics = [json.loads((sweep.path / r["run_dir"] / "metrics.json").read_text())
               for r in (matched, static)]
    assert metrics[0]["method"] == "dense" and metrics[0]["density"] == 1.0
    kept = metrics[1]["nonzero_prunable"]  # what the static cell keeps: round(0.2 · P)
    assert kept == round(0.2 * metrics[1]["params_prunable"])
    # within the rounding: no hidden size comes closer to the sparse cell's connections
    reachable = [connections(base_config(), hidden=[h, h]) for h in range(1, HIDDEN + 1)]
    gap = abs(metrics[0]["params_prunable"] - kept)
    assert gap == min(abs(c - kept) for c in reachable) and gap < 0.05 * kept


def test_params_column_is_the_trained_models_count(sweep):
    rows = read_rows(sweep.path)
    for row in rows:
        assert int(row["params"]) == trained_count(sweep.path / row["run_dir"]), row
    by_method = {r["method"] + r["role"]: int(r["params"]) for r in rows}
    assert by_method["static"] < by_method["dense"]
    # lowrank is matched to genetic's parameters (to within one layer's N_in + N_out / 2)
    assert abs(by_method["lowrank"] - by_method["genetic"]) <= 0.01 * by_method["genetic"]


def test_rerun_reuses_the_matched_cells(sweep):
    stamps = sorted((p, p.stat().st_mtime_ns) for p in sweep.path.glob("runs/*/metrics.json"))
    again = run_sweep(base_config(), ["dense", "static", "genetic", "lowrank"],
                      densities=[0.2], seeds=1, out=str(sweep.path), progress=False,
                      controls=["matched-dense"])
    assert [r["status"] for r in again.rows] == ["reused"] * 5
    assert [r["run_dir"] for r in again.rows] == [r["run_dir"] for r in sweep.rows]
    assert sorted((p, p.stat().st_mtime_ns) for p in
                  sweep.path.glob("runs/*/metrics.json")) == stamps


def test_grid_without_controls_keeps_its_record():
    grid = SweepGrid(methods=["dense"], seeds=1)
    assert "controls" not in grid.validate().to_dict()  # older sweeps keep their hash
    assert SweepGrid.from_mapping({"methods": ["esl"], "controls": ["matched-dense"]},
                                  "g").validate().to_dict()["controls"] == ["matched-dense"]


@pytest.mark.parametrize("argv", [["--controls", "nope"], ["--controls", "matched-dense,x"]])
def test_unknown_control_is_one_line_exit_2(tmp_path, capsys, argv):
    out = tmp_path / "sweep"
    code, err, _ = run_cli(["sweep", "--methods", "esl", *argv, "--epochs", "1", "--out",
                            str(out)], capsys)
    assert code == 2 and len(err) == 1 and "unknown control" in err[0], err
    assert "matched-dense" in err[0] and not out.exists()


def test_unknown_control_in_a_grid_file(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("methods: [esl]\ncontrols: [smaller]\n")
    out = tmp_path / "sweep"
    code, err, _ = run_cli(["sweep", "--grid", str(grid), "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "unknown control 'smaller'" in err[0], err
    assert not out.exists()
