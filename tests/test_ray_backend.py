"""The Ray backend (issue 15, item 2): ``spikesculpt sweep --backend ray`` and ``spikesculpt
evolve --backend ray`` on one local Ray instance with 2 CPUs give the local backend's numbers in
the same run directories; a task whose worker died is rerun; a rerun of the command reruns only
what never finished; without Ray, or with an address nobody answers at, a one-line error.

Ray is a test dependency (the ``test`` extra), so nothing here is skipped."""

import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray
import torch
from cli_run import assert_sweep_refused, run_cli, sweep_at_one_thread

from spikesculpt.cli.main import main
from spikesculpt.config import from_dict
from spikesculpt.experiments import train_run
from spikesculpt.experiments.backend import BackendOptions, RayCluster
from spikesculpt.experiments.evolution.score_cache import FOLDER, ScoreCache
from spikesculpt.experiments.rundir import read_yaml_mapping
from spikesculpt.experiments.sweep.cell_run import CellTask
from spikesculpt.experiments.sweep.executor import RayExecutor
from spikesculpt.experiments.sweep.run import run_task

pytestmark = pytest.mark.usefixtures("one_thread")

SWEEP = ["--dataset", "mnist1d:samples=600", "--epochs", "2", "--lr", "1e-2", "--methods",
         "dense,esl", "--densities", "0.2", "--seeds", "2", "--no-progress", "--no-report"]
ON_RAY = ["--backend", "ray", "--workers", "2"]   # 2 tasks at once, 1 torch thread each
TIMINGS = ("train_seconds",)
EVOLVE = ["evolve", "--population", "4", "--generations", "2", "--gene-dim", "3", "--epochs",
          "1", "--timesteps", "2", "--batch-size", "128", "--model-arg", "hidden=[24]",
          "--no-progress"]


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the file (2 CPUs, no dashboard); the executors join it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # this file's task classes
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The small sweep on the local backend, in this process at one thread."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    sweep_at_one_thread(SWEEP, out)
    return out


def rows(folder):
    with open(Path(folder) / "cells.csv", newline="", encoding="utf-8") as fh:
        return [{k: v for k, v in r.items() if k not in TIMINGS} for r in csv.DictReader(fh)]


def files(folder):
    """The files under ``folder``/runs, relative to it (the run directories' contents)."""
    runs = Path(folder) / "runs"
    return sorted(str(p.relative_to(runs)) for p in runs.rglob("*") if p.is_file())


def test_sweep_on_ray_equals_local(ray_instance, local_sweep, tmp_path):
    out = tmp_path / "sweep"
    sweep_at_one_thread(SWEEP + ON_RAY, out)
    assert [r["status"] for r in rows(out)] == ["trained"] * 4
    assert rows(out) == rows(local_sweep)   # every column but the timings, run_dir included
    assert files(out) == files(local_sweep)
    assert float(rows(out)[0]["test_accuracy"]) > 0.1   # trained, not an empty row


def test_rerun_on_ray_reruns_only_the_cell_that_never_finished(ray_instance, local_sweep,
                                                               tmp_path):
    """The driver died before one cell's result arrived (its run directory never finished):
    the same command again trains that cell and reuses the other three."""
    out = tmp_path / "sweep"
    sweep_at_one_thread(SWEEP, out)            # a copy of the local sweep
    lost = out / rows(out)[3]["run_dir"]
    (lost / "metrics.json").unlink()           # as if its result never came back
    for name in ("model.safetensors", "history.csv"):
        (lost / name).unlink()
    sweep_at_one_thread(SWEEP + ON_RAY, out)
    assert [r["status"] for r in rows(out)] == ["reused", "reused", "reused", "trained"]
    assert rows(out) == [{**r, "status": s} for r, s in
                         zip(rows(local_sweep), ["reused"] * 3 + ["trained"])]


@dataclass
class DiesAfterFirstEpoch:
    """A sweep task whose first attempt kills its own worker process (as a lost machine would)
    right after the checkpoint of its first epoch; the marker file tells the retry it is not
    the first (the retry runs in a fresh process, without this patch)."""

    task: CellTask
    marker: str

    def run(self):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            save = train_run._save_checkpoint

            def save_then_die(run, trainer):
                save(run, trainer)
                os._exit(1)

            train_run._save_checkpoint = save_then_die
        return self.task.run(), os.getpid()


def test_a_cell_whose_worker_died_is_rerun_and_resumes(ray_instance, local_sweep, tmp_path):
    config = sweep_config(local_sweep, 0)
    executor = RayExecutor(RayCluster.connect(BackendOptions(backend="ray"), workers=2))
    marker = tmp_path / "first-attempt"
    task = DiesAfterFirstEpoch(CellTask(config, str(tmp_path / "runs")), str(marker))
    done = list(executor.run(run_task, [task]))
    assert len(done) == 1 and done[0].error is None, done[0].error
    outcome, pid = done[0].value
    assert int(marker.read_text()) != pid         # the first worker died, another one ran it
    assert outcome.status == "resumed"            # from the checkpoint of epoch 1
    reference = rows(local_sweep)[0]              # the same cell, trained without a break
    assert outcome.epochs_run == int(reference["epochs_run"]) == 2
    for key in ("test_accuracy", "val_accuracy", "firing_rate"):
        assert outcome.metrics[key] == float(reference[key]), key


def raises(item):
    raise ValueError(f"bad item {item}")


def test_an_exception_of_the_task_is_its_error_not_retried(ray_instance):
    executor = RayExecutor(RayCluster.connect(BackendOptions(backend="ray"), workers=2))
    done = sorted(executor.run(raises, [1, 2]), key=lambda d: d.index)
    assert [type(d.error) for d in done] == [ValueError, ValueError]
    assert "bad item 2" in str(done[1].error)


def evolution_record(folder):
    """What an evolution found, less timings and the evaluation mode: candidates.csv, the
    per-generation rows, the best genome, the final training's test accuracy."""
    with open(Path(folder) / "candidates.csv", newline="", encoding="utf-8") as fh:
        candidates = [{k: v for k, v in r.items() if k != "mode"} for r in csv.DictReader(fh)]
    summary = json.loads((Path(folder) / "evolution.json").read_text())
    generations = [{k: v for k, v in r.items() if k not in ("seconds", "mode")}
                   for r in summary["generations"]]
    best = {k: v for k, v in summary["best"].items() if k != "mode"}
    return candidates, generations, best, summary["final"]["test_accuracy"]


@pytest.fixture(scope="module")
def ray_evolution(ray_instance, tmp_path_factory):
    """A small evolution with every candidate a Ray task (2 at once, 1 thread each)."""
    out = tmp_path_factory.mktemp("evolve") / "ray"
    assert main_at_one_thread([*EVOLVE, "--backend", "ray", "--workers", "2", "--out",
                               str(out)]) == 0
    return out


def main_at_one_thread(argv):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def test_evolve_on_ray_equals_local(ray_evolution, tmp_path):
    local = tmp_path / "local"
    assert main([*EVOLVE, "--batched", "off", "--out", str(local)]) == 0   # here, 1 thread
    assert evolution_record(ray_evolution) == evolution_record(local)
    with open(ray_evolution / "candidates.csv", newline="", encoding="utf-8") as fh:
        assert {r["mode"] for r in csv.DictReader(fh)} == {"ray"}
    assert not (ray_evolution / FOLDER).exists()   # the scores of finished generations: gone


def test_resumed_evolve_reruns_only_the_candidates_that_never_arrived(ray_evolution, tmp_path,
                                                                      monkeypatch):
    """The driver stops after 2 of generation 1's 4 scores arrived; --resume sends only the
    other 2 to Ray, then generation 2 whole, and ends where the uninterrupted run ended."""
    out = tmp_path / "evo"
    stored = []
    put = ScoreCache.put

    def put_then_stop(self, index, genome, result):
        if len(stored) == 2:
            raise KeyboardInterrupt
        put(self, index, genome, result)
        stored.append(index)

    monkeypatch.setattr(ScoreCache, "put", put_then_stop)
    argv = [*EVOLVE, "--backend", "ray", "--workers", "2", "--out", str(out)]
    assert main_at_one_thread(argv) == 130
    assert len(list((out / FOLDER).glob("g0001-*.pt"))) == 2
    monkeypatch.setattr(ScoreCache, "put", put)
    sent = []
    run = RayCluster.run

    def counted(self, fn, items, num_gpus=0.0):
        sent.append(len(items))
        return run(self, fn, items, num_gpus)

    monkeypatch.setattr(RayCluster, "run", counted)
    assert main_at_one_thread([*argv, "--resume"]) == 0
    assert sent == [2, 4]
    assert evolution_record(out) == evolution_record(ray_evolution)


def sweep_config(folder, row):
    """The TrainConfig of the ``row``-th cell of a sweep, read back from its run directory."""
    run_dir = Path(folder) / rows(folder)[row]["run_dir"]
    return from_dict(read_yaml_mapping(run_dir / "config.yaml")["config"])


def test_without_ray_the_backend_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # ``import ray`` raises ImportError
    assert_sweep_refused(["--backend", "ray"], "pip install 'spikesculpt[ray]'", tmp_path,
                         capsys)
    assert_evolve_refused(["--backend", "ray"], "pip install 'spikesculpt[ray]'", tmp_path,
                          capsys)


def assert_evolve_refused(argv, word, tmp_path, capsys):
    """``spikesculpt evolve *argv`` exits 2 with one line naming ``word`` and writes nothing."""
    out = tmp_path / "evo"
    code, err, _ = run_cli([*EVOLVE, *argv, "--out", str(out)], capsys)
    assert code == 2 and len(err) == 1 and word in err[0], err
    assert not out.exists()


def test_evolve_on_ray_takes_no_batched_engine(tmp_path, capsys):
    assert_evolve_refused(["--backend", "ray", "--batched", "stack"],
                          "one candidate per Ray task", tmp_path, capsys)
    assert_evolve_refused(["--address", "auto"], "add --backend ray", tmp_path, capsys)


@pytest.mark.parametrize("argv, word", [
    (["--backend", "ray", "--address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
    (["--backend", "ray", "--address", "head-node"], "is not HOST:PORT"),
    (["--address", "auto"], "add --backend ray"),
    (["--gpus-per-task", "1"], "add --backend ray"),
    (["--backend", "ray", "--gpus-per-task", "-1"], "must be a number >= 0"),
    (["--backend", "spark"], "unknown backend 'spark'"),
])
def test_bad_backend_flags_are_one_line_errors(argv, word, tmp_path, capsys):
    assert_sweep_refused(argv, word, tmp_path, capsys)
