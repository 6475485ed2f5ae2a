"""The benchmark scripts: selection on validation (never on test), paired statistics, and the
one entry point (benchmarks/run_all.py) whose jobs must parse and run end to end."""

import argparse
import importlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

pytestmark = pytest.mark.usefixtures("one_thread")


def bench(name):
    return importlib.import_module(name)


# ------------------------------------------------------------------------------ selection
def fake_sparse_run(args, label, density, seed, root, update_every=None, **_):
    """A sweep run whose validation accuracy prefers esl-random/T_iter 10 while its test
    accuracy prefers every other candidate (a test-chosen sweep would pick another one)."""
    val, test = {("esl-random", 10): (0.90, 0.70)}.get((label, update_every), (0.80, 0.99))
    return {"variant": label, "density_target": density, "seed": seed,
            "update_every": update_every, "val_accuracy": val + 0.001 * seed,
            "test_accuracy": test - 0.01 * seed, "density": density, "mask_density": density,
            "topology_change": 0.0, "train_seconds": 1.0}


def test_esl_sweep_chooses_on_validation_and_reports_test_of_the_chosen_only(monkeypatch,
                                                                             tmp_path):
    sm = bench("bench_sparse_methods")
    monkeypatch.setattr(sm, "one_run", fake_sparse_run)
    args = argparse.Namespace(seeds=3, sweep_density=0.1, sweep_every=[10, 25], workers=1)
    result = sm.part_sweep(args, tmp_path)

    chosen = result["chosen"]
    assert (chosen["grow"], chosen["update_every"]) == ("random", 10)
    assert chosen["test_mean"] == pytest.approx(0.69)          # mean of 0.70, 0.69, 0.68
    assert chosen["is_current_default"] is False
    assert all("test_mean" not in c for c in result["candidates"])
    kept = [r for r in result["runs"] if "test_accuracy" in r]
    assert len(kept) == 3 and all(r["variant"] == "esl-random" and r["update_every"] == 10
                                  for r in kept)
    assert len(result["runs"]) == 3 * 3 * 2                     # seeds x rules x T_iter
    text = bench("tables").render_sparse_sweep(result)
    assert "Chosen on validation: grow **random**, T_iter **10**" in text
    assert "99." not in text                                    # no other candidate's test


def test_esl_sweep_keeps_the_current_default_on_a_validation_tie(monkeypatch, tmp_path):
    sm = bench("bench_sparse_methods")
    monkeypatch.setattr(sm, "one_run", lambda *a, **k: {**fake_sparse_run(*a, **k),
                                                        "val_accuracy": 0.5})
    default = sm.esl_defaults()
    args = argparse.Namespace(seeds=2, sweep_density=0.1,
                              sweep_every=[10, default["update_every"], 100], workers=1)
    chosen = sm.part_sweep(args, tmp_path)["chosen"]
    assert (chosen["grow"], chosen["update_every"]) == (default["grow"], default["update_every"])
    assert chosen["is_current_default"] is True


def test_genetic_init_std_chosen_on_validation(monkeypatch):
    bg = bench("bench_genetic")
    by_std = {1.0: (0.40, 0.99), 0.1: (0.93, 0.80), 0.02: (0.90, 0.97)}   # (val, test)

    def fake_fit(cfg, splits, model=None):
        val, test = by_std[cfg.genetic.init_std]
        return {"val_accuracy": val, "test_accuracy": test, "params": 1, "train_seconds": 0.0,
                "firing_rate": 0.1}

    monkeypatch.setattr(bg, "fit", fake_fit)
    args = argparse.Namespace(seeds=2, epochs=1, init_stds=[1.0, 0.1, 0.02],
                              init_std_gene_dim=16)
    rows, extra = bg.part_init_std(args, lambda seed: None)
    assert extra["chosen"]["init_std"] == 0.1
    assert extra["chosen"]["test_mean"] == pytest.approx(0.80)
    assert {r["init_std"] for r in rows if "test_accuracy" in r} == {0.1}
    assert all("test_mean" not in c for c in extra["candidates"])
    assert "Chosen on validation: s = **0.1**" in bench("tables").render_genetic_init_std(
        {**extra, "rows": rows})


# ------------------------------------------------------------------------------ statistics
def test_paired_difference_95_ci():
    s = bench("summary")
    d = s.paired_difference({0: 0.90, 1: 0.80, 2: 0.85, 3: 0.5}, {0: 0.80, 1: 0.75, 2: 0.80})
    diffs = [0.10, 0.05, 0.05]                                  # seed 3 has no partner
    mean = sum(diffs) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in diffs) / 2)
    half = 4.302653 * std / math.sqrt(3)                        # t_{0.975, 2}
    assert d["n"] == 3 and d["seeds"] == [0, 1, 2]
    assert d["mean"] == pytest.approx(mean)
    assert d["ci95"] == pytest.approx([mean - half, mean + half])
    one = s.paired_difference({0: 0.9}, {0: 0.8})
    assert one["n"] == 1 and math.isnan(one["ci95"][0])
    assert s.diff_ci(one) == "+10.00 (n = 1)"
    assert s.paired_difference({0: 0.9}, {1: 0.8}) is None
    assert s.t_quantile_975(30) == pytest.approx(2.042272)
    assert s.t_quantile_975(31) == pytest.approx(2.039513, abs=1e-5)   # expansion beyond 30
    assert s.t_quantile_975(100) == pytest.approx(1.983972, abs=1e-5)


def test_choose_on_validation_ties_go_to_the_smaller_std_then_the_first():
    s = bench("summary")
    cands = [{"val_mean": 0.9, "val_std": 0.02}, {"val_mean": 0.9, "val_std": 0.01},
             {"val_mean": 0.9, "val_std": 0.01}, {"val_mean": 0.8, "val_std": 0.0}]
    assert s.choose_on_validation(cands) == 1


# ------------------------------------------------------------------------------ entry point
def parse(module, argv):
    """The script's own parsing (incl. its checks of --parts), without running anything."""
    return module.parse_args(argv) if hasattr(module, "parse_args") else \
        module.build_parser().parse_args(argv)


def test_every_job_of_the_entry_point_parses_and_has_a_table(tmp_path):
    run_all, tables = bench("run_all"), bench("tables")
    names = [job.name for job in run_all.JOBS]
    assert len(names) == len(set(names))
    for job in run_all.JOBS:
        module = bench(job.script[:-3])
        for variant in ("full", "reduced", "quick"):
            cmd = run_all.job_command(job, tmp_path / job.name, variant, tmp_path, workers=2,
                                      device="cuda")
            parse(module, cmd[2:])
        assert tables.renderer_for(job.name)
        assert job.quoted_in, f"{job.name}: say where its numbers are quoted"


def test_run_all_quick_runs_a_job_end_to_end(tmp_path, monkeypatch):
    """The cheapest job, in a subprocess as run_all runs every job, with CUDA hidden: the GPU
    LIF job then writes 'skipped' rows (the path every machine without the peer takes)."""
    run_all = bench("run_all")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    rc = run_all.main(["--quick", "--only", "lif-mlp-cuda", "--out-root", str(tmp_path),
                       "--quiet"])
    assert rc == 0
    (run_dir,) = tmp_path.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["variant"] == "quick"
    assert {"git_commit", "git_dirty", "date", "command", "cpu"} <= set(manifest)
    (job,) = manifest["jobs"]
    assert job["status"] == "ok" and any(f.endswith(".json") for f in job["files"])
    result = json.loads((run_dir / [f for f in job["files"] if f.endswith(".json")][0])
                        .read_text())
    assert {"git_commit", "command", "date", "torch_threads", "cpu"} <= set(result["machine"])
    assert all(r["status"] == "skipped: CUDA not available" for r in result["results"])
    text = (run_dir / "tables.md").read_text()
    assert "## lif-mlp-cuda" in text and "skipped: CUDA not available" in text
    assert "README.md › Benchmarks › the GPU paragraph" in text
    assert manifest["git_commit"][:7] in text


def test_lif_benchmark_without_cuda_writes_skipped_rows(monkeypatch, tmp_path):
    lif = bench("bench_lif_mlp")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert lif.main(["--device", "cuda", "--quick", "--out-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.json")
    rows = json.loads(path.read_text())["results"]
    assert rows and all(r["status"] == "skipped: CUDA not available" for r in rows)
    assert "skipped: CUDA not available" in bench("tables").skipped_reason(
        json.loads(path.read_text()))


def test_vggsnn_benchmark_runs_every_neuron_on_the_conv_model(tmp_path):
    """The conv benchmark of issue 16 on the CPU (a tiny run): every neuron row trains the same
    VGGSNN; the files record the model and the SpikingJelly backend field."""
    lif = bench("bench_lif_mlp")
    assert lif.main(["--model", "vggsnn", "--quick", "--batch", "1", "--T", "2",
                     "--only", "spikesculpt,spikingjelly", "--out-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("lif_vggsnn_*.json")
    data = json.loads(path.read_text())
    assert data["config"]["model"] == "vggsnn" and data["config"]["T"] == 2
    rows = {r["implementation"]: r for r in data["results"]}
    assert rows["relu"]["status"] == "ok" and rows["spikesculpt"]["ms_per_step"] > 0
    assert "## " not in bench("tables").render_lif(data)  # renders without a GPU column value


def test_neuron_kernel_benchmark_says_it_needs_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench("bench_neuron_kernel").main(["--device", "cuda"]) == 0
    assert "skipped: CUDA not available" in capsys.readouterr().out


def test_a_default_changes_only_for_a_difference_beyond_noise():
    """The validation-best candidate replaces the current default only when its paired 95% CI
    lies above zero; a better mean within noise keeps the default (and says so)."""
    s = bench("summary")
    default = {s_: 0.90 for s_ in range(3)}
    noisy = {0: 0.95, 1: 0.88, 2: 0.93}           # mean +0.02, CI includes 0
    clear = {0: 0.93, 1: 0.94, 2: 0.935}          # mean +0.035, CI above 0
    cands = [{"val_mean": 0.90, "val_minus_default": s.paired_difference(default, default)},
             {"val_mean": 0.92, "val_minus_default": s.paired_difference(noisy, default)}]
    assert s.choose_default(cands, 0) == (0, 1)
    cands.append({"val_mean": 0.935, "val_minus_default": s.paired_difference(clear, default)})
    assert s.choose_default(cands, 0) == (2, 2)


# ------------------------------------------------------------------ lottery sweep comparison
def write_lottery_cells(folder, rows):
    """A sweep folder whose cells.csv holds ticket rows ``(seed, level, density, val, test)``
    and one control row per level (which the comparison must ignore)."""
    folder.mkdir()
    head = "method,seed,status,test_accuracy,val_accuracy,density,role,level\n"
    lines = [f"imp,{s},trained,{t},{v},{d},,{k}\n" for s, k, d, v, t in rows]
    lines += [f"imp,{s},trained,0.0,0.0,{d},reinit,{k}\n" for s, k, d, _, _ in rows if k]
    (folder / "cells.csv").write_text(head + "".join(lines))
    return folder


def test_lottery_comparison_at_density_pairs_the_first_level_past_it_and_the_dense_gap(
        tmp_path, capsys, monkeypatch):
    cmp = bench("compare_lottery_sweeps")
    # A: 3 rounds of rate 0.5 (level 3 at 0.125, level 4 at 0.0625); dense 0.90 / 0.92
    a = write_lottery_cells(tmp_path / "a", [
        (s, k, d, 0.90 - 0.02 * k + 0.001 * s, 0.80)
        for s in range(3) for k, d in enumerate((1.0, 0.5, 0.25, 0.125, 0.0625))])
    # B: dense higher by 0.05, its first level <= 0.1 is level 2 (0.09): val 0.88 + 0.002 s
    b = write_lottery_cells(tmp_path / "b", [
        (s, k, d, v + 0.002 * s, 0.80)
        for s in range(3) for k, d, v in ((0, 1.0, 0.95), (1, 0.3, 0.93), (2, 0.09, 0.88))])
    monkeypatch.setattr(sys, "argv", ["x", str(a), str(b), "--density", "0.1"])
    cmp.main()
    out = capsys.readouterr().out
    assert "a: level 4 (density 0.0625); b: level 2 (density 0.0900)" in out
    # ticket: A 0.82 + 0.001 s − (0.88 + 0.002 s) = −6 points − 0.1 s: mean −6.10
    assert "| ticket accuracy | -6.10 [" in out
    # gap: A −0.08 − B (−0.07) = −1 point exactly on every seed: a zero-width interval
    assert "| ticket − dense | -1.00 [-1.00, -1.00] |" in out
    with pytest.raises(SystemExit, match="no level at density <= 0.05"):
        cmp.at_density(cmp.tickets(a), cmp.tickets(b), ("a", "b"), 0.05)


def test_interleaved_whole_runs_train_every_method_through_the_whole_schedule(tmp_path):
    """The ``runs`` part of the overhead benchmark: every repeat trains dense, ESL and
    ESL-Hebbian through all their epochs (same steps), ESL really rewires, and the ratio's
    interval brackets its mean."""
    sm = bench("bench_sparse_methods")
    args = sm.parse_args(["--dataset", "digits", "--epochs", "4", "--overhead-repeats", "2",
                          "--parts", "runs"])
    result = sm.part_runs(args, tmp_path)
    assert len(result["repeats"]) == len(result["work"]) == 2
    for work in result["work"]:
        steps = {w["steps"] for w in work.values()}
        assert len(steps) == 1 and steps.pop() > 0
        assert work["dense"]["mask_updates"] == 0
        assert work["esl"]["mask_updates"] > 0 and work["esl-hebbian"]["mask_updates"] > 0
    for label in ("esl", "esl-hebbian"):
        r = result[label]
        assert len(r["ratios"]) == 2 and all(x > 0 for x in r["ratios"])
        assert r["ci95"][0] <= r["mean"] <= r["ci95"][1]
