"""Data-parallel training with torch.distributed: 2 gloo processes on this CPU machine.

One launch of ``tests/distributed_worker.py`` (2 ranks, ``SPIKESCULPT_CHECK_MASKS=1``) trains
dense, ESL with each growth rule and an IMP search; the test reads what each rank reports and
the run directories rank 0 wrote. Dense 2-process training must equal 1-process training with
the same global batch (the gradient semantics: local mean loss × W·n_local/n_global, averaged by
DDP). The same launch trains the final model of an evolution whose search ran here, in one
process: equal to a one-process evolution, identical weights on both ranks. A second launch,
through ``spikesculpt train --nproc 2``, is killed mid-run (one rank SIGKILLed): one clear
error, then ``--resume`` completes the run.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from cli_run import run_cli
from distributed_worker import config as worker_config
from distributed_worker import evolve_argv
from safetensors.torch import load_file

from spikesculpt.cli.launch import child_env, free_port, launch
from spikesculpt.cli.main import main
from spikesculpt.core.distributed import local_slice
from spikesculpt.data.sets.digits import digits_arrays
from spikesculpt.experiments.train_run import run_training
from spikesculpt.train import distributed as train_distributed

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")
GROWTH = ("random", "gradient", "hebbian")


def env_one_thread(**extra) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src"), **extra}
    return env


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """300 training digits (270 after the validation split: batches of 50 end with 20, an
    uneven last batch) and 100 test digits."""
    x, y = digits_arrays()
    path = tmp_path_factory.mktemp("data") / "digits300.npz"
    np.savez(path, x=x[:300], y=y[:300], x_test=x[300:400], y_test=y[300:400])
    return f"npz:{path}"


@pytest.fixture(scope="module")
def two_ranks(data, tmp_path_factory):
    """The worker's runs on 2 gloo ranks: (output folder, [rank 0 report, rank 1 report])."""
    out = tmp_path_factory.mktemp("ddp")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the search of the evolution whose final training the ranks run: here, one process
        assert main([*evolve_argv(data, out / "evolve"), "--search-only"]) == 0
    finally:
        torch.set_num_threads(threads)
    port = free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), data, str(out)],
                              env={**child_env(r, 2, port), **env_one_thread(
                                  SPIKESCULPT_CHECK_MASKS="1")},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_local_slices_cover_the_batch_once():
    for n in (1, 2, 7, 50, 64):
        for world in (1, 2, 3):
            parts = [i for r in range(world) for i in list(range(n))[local_slice(n, r, world)]]
            assert parts == list(range(n))


def test_dense_two_processes_equal_one_process(data, two_ranks, tmp_path):
    out, reports = two_ranks
    one = run_training(worker_config(data), out=str(tmp_path / "one"), progress=False)
    two = load_file(str(out / "dense" / "model.safetensors"))
    for name, tensor in load_file(str(tmp_path / "one" / "model.safetensors")).items():
        torch.testing.assert_close(two[name], tensor, rtol=1e-4, atol=1e-5)
    for key in ("test_accuracy", "val_accuracy", "best_epoch"):
        assert reports[0]["runs"]["dense"][key] == pytest.approx(one.metrics[key], abs=1e-9)
    assert reports[0]["runs"]["dense"]["world_size"] == 2
    # every rank returns rank 0's metrics, with the counts all-reduced over the ranks
    assert reports[1]["runs"]["dense"]["test_accuracy"] == reports[0]["runs"]["dense"][
        "test_accuracy"]


@pytest.mark.parametrize("grow", GROWTH)
def test_esl_masks_identical_and_density_exact(two_ranks, grow):
    out, reports = two_ranks
    metrics = json.loads((out / f"esl-{grow}" / "metrics.json").read_text())
    assert metrics["mask_updates"] >= 4 and metrics["connections_changed"] > 0
    counts = metrics["method_params"]["layer_counts"]
    assert metrics["nonzero_prunable"] <= sum(counts.values())
    assert metrics["mask_density"] == pytest.approx(sum(counts.values())
                                                    / metrics["params_prunable"], abs=1e-12)
    for r in reports:
        assert r["runs"][f"esl-{grow}"]["mask_updates"] == metrics["mask_updates"]
        assert r["runs"][f"esl-{grow}"]["topology_change"] == metrics["topology_change"]


def test_every_mask_update_was_checked_and_a_difference_is_caught(two_ranks):
    reports = two_ranks[1]
    updates = sum(reports[0]["runs"][f"esl-{g}"]["mask_updates"] for g in GROWTH)
    for r in reports:
        assert r["mask_checks"] >= updates + 2  # + the IMP search's two pruned masks
        assert "w differs between the ranks" in r["divergence_caught"]


def test_imp_on_two_ranks(two_ranks):
    reports = two_ranks[1]
    levels = reports[0]["runs"]["imp"]["levels"]
    assert [lv["level"] for lv in levels] == [0, 1, 2]
    assert levels[2]["density"] == pytest.approx(0.25, abs=0.01)
    assert reports[1]["runs"]["imp"]["levels"] == levels


def test_sync_bn_on_cpu_is_refused_in_one_line_on_every_rank(two_ranks):
    out, reports = two_ranks
    for r in reports:
        assert "--sync-bn needs CUDA" in r["sync_bn_on_cpu"]
    assert not (out / "syncbn").exists()


def test_only_rank_zero_writes_and_the_directories_are_complete(two_ranks):
    out, reports = two_ranks
    assert reports[0]["replaced"] > 0 and reports[1]["replaced"] == 0
    for run in ["dense", *(f"esl-{g}" for g in GROWTH)]:
        names = {p.name for p in (out / run).iterdir()}
        assert {"config.yaml", "metrics.json", "history.csv", "model.safetensors",
                "training_curves.png"} <= names, names
        assert not any(n.endswith(".tmp") or n == "checkpoint.pt" for n in names), names
    assert (out / "imp" / "summary.json").is_file()


def test_evolve_final_training_on_two_ranks_equals_one_process(data, two_ranks, tmp_path,
                                                               capsys):
    out, reports = two_ranks
    assert main(evolve_argv(data, tmp_path / "one")) == 0  # search + final, one process
    one = json.loads((tmp_path / "one" / "evolution.json").read_text())
    two = json.loads((out / "evolve" / "evolution.json").read_text())
    assert two["best"] == one["best"]  # the same search (one process, same seed)
    for key in ("test_accuracy", "val_accuracy", "params_total", "compression"):
        assert two["final"][key] == pytest.approx(one["final"][key], abs=1e-9)
    final = load_file(str(out / "evolve" / "final" / "model.safetensors"))
    for name, tensor in load_file(str(tmp_path / "one" / "final" /
                                      "model.safetensors")).items():
        torch.testing.assert_close(final[name], tensor, rtol=1e-4, atol=1e-5)
    metrics = json.loads((out / "evolve" / "final" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs"] == 2
    for r in reports:  # every rank: the final training alone (the search ran here)
        assert r["evolve"]["status"] == 0 and r["evolve"]["fits"] == 1
    assert not (out / "evolve" / "checkpoint.pt").exists()


def test_evolve_final_weights_identical_on_both_ranks(two_ranks):
    reports = two_ranks[1]
    weights = [r["evolve"]["weights"] for r in reports]
    assert any("x_in" in name for name in weights[0]), list(weights[0])
    assert weights[0] == weights[1]


def test_a_distributed_evolve_without_a_finished_search_is_refused(two_ranks):
    out, reports = two_ranks
    for r in reports:
        assert "search is unfinished" in r["evolve_unsearched"], r["evolve_unsearched"]
        assert "--search-only" in r["evolve_unsearched"]
    assert not (out / "unsearched").exists()


def test_evolve_help_shows_nproc_and_search_only(capsys):
    code, _, text = run_cli(["evolve", "--help"], capsys)
    assert code == 0 and "--nproc N" in text and "--search-only" in text
    assert "final training" in " ".join(text.split())


@pytest.mark.parametrize("flags, words", [
    (["--nproc", "0"], "must be a positive integer"),
    (["--nproc", "2", "--search-only"], "--search-only trains no final model"),
    (["--nproc", "1", "--search-only"], "drop one of them"),
])
def test_evolve_bad_launch_flags_are_one_line(data, tmp_path, capsys, flags, words):
    out = tmp_path / "evo"
    code, err, _ = run_cli([*evolve_argv(data, out), *flags], capsys)
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not out.exists()


def test_evolve_nproc_searches_here_then_launches_the_final_training(data, tmp_path, capsys,
                                                                     monkeypatch):
    """``--nproc 2``: the search runs in this process, then the ranks are started with
    ``--resume`` (recorded here instead of started: what a rank then does is the worker's)."""
    launched = []
    monkeypatch.setattr("spikesculpt.cli.evolve.launch",
                        lambda argv, n: launched.append((argv, n)) or 0)
    out = tmp_path / "evo"
    argv = [*evolve_argv(data, out), "--nproc", "2"]
    code, err, _ = run_cli(argv, capsys)
    assert code == 0, err
    assert launched == [([*argv, "--resume"], 2)]
    summary = json.loads((out / "evolution.json").read_text())
    assert len(summary["generations"]) == 1 and "final" not in summary
    assert (out / "checkpoint.pt").is_file() and not (out / "final").exists()
    code, err, _ = run_cli(argv, capsys)  # interrupted now: like one process, needs --resume
    assert code == 2 and len(err) == 1 and "--resume" in err[0] and len(launched) == 1
    code, err, _ = run_cli([*argv, "--resume"], capsys)  # the search is not run again
    assert code == 0 and launched[1] == launched[0], err
    assert json.loads((out / "evolution.json").read_text()) == summary


def test_search_only_then_resume(data, tmp_path, capsys):
    out = tmp_path / "evo"
    argv = evolve_argv(data, out)
    code, err, text = run_cli([*argv, "--search-only"], capsys)
    assert code == 0 and "final training: the same command with --resume" in text, err
    assert not (out / "final").exists()
    code, err, _ = run_cli(argv, capsys)  # without --resume: the usual one-line refusal
    assert code == 2 and len(err) == 1 and "--resume" in err[0]


def _rank_pid(rank: int) -> int:
    """The pid of this process's child with ``RANK=rank`` (``--nproc``'s ranks; from /proc)."""
    children = [pid for task in Path(f"/proc/{os.getpid()}/task").iterdir()
                for pid in (task / "children").read_text().split()]  # of every thread
    for pid in children:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no child with RANK={rank} among {children}")


def test_a_killed_rank_stops_the_run_and_resume_completes_it(data, tmp_path, capfd,
                                                             monkeypatch):
    """``--nproc 2`` (its launcher runs in this process: no second import of the CLI)."""
    for key, value in env_one_thread().items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    argv = ["train", "--dataset", data, "--epochs", "12", "--timesteps", "2", "--batch-size",
            "50", "--model-arg", "hidden=[24]", "--device", "cpu", "--no-progress", "--nproc",
            "2", "--out", str(out)]
    status = []
    launcher = threading.Thread(target=lambda: status.append(launch(argv, 2)))
    launcher.start()
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").is_file():  # the first epoch is saved: kill mid-run
        assert launcher.is_alive() and time.monotonic() < deadline, capfd.readouterr()
        time.sleep(0.02)
    os.kill(_rank_pid(1), signal.SIGKILL)
    launcher.join(timeout=120)
    err = capfd.readouterr().err
    assert status and status[0] != 0
    assert "rank 1 was killed (SIGKILL)" in err and "--resume" in err, err
    assert "Traceback" not in err, err
    assert not (out / "metrics.json").exists()

    assert launch([*argv, "--resume"], 2) == 0, capfd.readouterr().err
    assert "test accuracy" in capfd.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2
    assert len((out / "history.csv").read_text().strip().splitlines()) == 1 + 12
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("finished, barrier_fails", [(True, False), (False, False),
                                                     (True, True)])
def test_shutdown_meets_at_a_barrier_only_after_a_finished_run(tmp_path, monkeypatch,
                                                              finished, barrier_fails):
    """A finished run's ranks meet at a barrier before the group is destroyed (no rank tears
    its gloo threads down while a peer still talks to it); after an error, no barrier (the
    peers may be gone); the group is destroyed even when the barrier fails."""
    calls = []

    def barrier():
        calls.append("barrier")
        if barrier_fails:
            raise RuntimeError("Connection closed by peer")

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    monkeypatch.setattr(train_distributed, "barrier", barrier)
    try:
        if barrier_fails:
            with pytest.raises(RuntimeError, match="Connection closed"):
                train_distributed.shutdown(finished)
        else:
            train_distributed.shutdown(finished)
        assert calls == (["barrier"] if finished else [])
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    train_distributed.shutdown(True)  # nothing to shut down: a no-op
