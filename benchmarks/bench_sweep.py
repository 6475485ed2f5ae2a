"""A sweep with 1 worker and with N, side by side, and a kill-and-restart check (issue 13).

    python benchmarks/bench_sweep.py --workers 1,2 --kill-after 30 -- \\
        --dataset mnist1d --model mlp --methods dense,static,set,rigl,esl \\
        --densities 0.5,0.2,0.1,0.05 --seeds 5 --epochs 30 --controls matched-dense

Everything after ``--`` is passed to ``spikesculpt sweep`` (no ``--workers`` / ``--out``). For each
worker count W the sweep runs from scratch in ``WORK/w<W>`` as a separate process with
``OMP_NUM_THREADS=1`` (each worker then trains with one thread), and its wall time is measured
from the command's start to its end (process start, imports, every cell, cells.csv and the
report included).

``--kill-after K``: the run with the most workers is killed (SIGKILL to its whole process group,
as a crash or a cluster's pre-emption would) once K cells have finished (``metrics.json``
written), then started again with the same command. Its time is the sum of both parts. Checked
afterwards: every cell that had finished before the kill is ``reused`` in the restarted run and
its ``metrics.json`` is byte-identical to before; and the cells of all runs give identical
numbers (accuracies, densities, SynOps, energy) and identical report tables.

Writes ``<out-dir>/sweep_<machine>_1t_<date>_<commit>.json`` (times, ratio, checks, provenance),
and copies each run's cells.csv, report.md and report.html next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from machine import provenance, result_stem

NUMBER_COLUMNS = ("test_accuracy", "val_accuracy", "density", "firing_rate", "synops",
                  "energy_pj", "best_epoch", "epochs_run", "params")
TIME_COLUMN = "train s / cell"          # the cost table's time column (varies run to run)
VOLATILE_WORDS = ("second", "wall", "status", "trained", "reused", "resumed", "commit",
                  "machine", "date", "sweep directory", "command", "spikesculpt ", "torch", "time")


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    sweep_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--kill-after", type=int, default=0,
                        help="kill the run with the most workers after K finished cells, restart")
    parser.add_argument("--work", default="runs/bench-work/sweep",
                        help="folder for the sweep directories (emptied first)")
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args(own)
    if not sweep_args:
        parser.error("give the sweep's arguments after --")
    return args, sweep_args


def sweep_command(sweep_args: list[str], workers: int, out: Path) -> list[str]:
    return [sys.executable, "-m", "spikesculpt", "sweep", *sweep_args,
            "--workers", str(workers), "--out", str(out)]


def finished_cells(out: Path) -> dict[str, bytes]:
    """``{run dir name: metrics.json bytes}`` of the cells finished so far."""
    found = {}
    for path in sorted(out.glob("runs/*/metrics.json")):
        try:
            found[path.parent.name] = path.read_bytes()
        except OSError:
            pass
    return found


def run_once(cmd: list[str], env: dict, log, kill_after: int = 0, out: Path | None = None):
    """Run ``cmd``; with ``kill_after``, SIGKILL its process group once that many cells have
    finished. Returns (seconds, return code, killed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    killed = False
    while proc.poll() is None:
        time.sleep(0.5)
        if kill_after and len(finished_cells(out)) >= kill_after:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
    return time.perf_counter() - start, proc.returncode, killed


def read_rows(out: Path) -> list[dict]:
    return json.loads((out / "cells.json").read_text())["cells"]


def numbers(rows: list[dict]) -> list[tuple]:
    return [(r["run_dir"], *(r.get(c) for c in NUMBER_COLUMNS)) for r in rows]


def report_tables(out: Path) -> list[str]:
    """The lines of report.md that carry results: volatile lines (times, statuses, provenance)
    left out, and the time column of the cost table dropped."""
    path = out / "report.md"
    if not path.exists():
        return []
    kept, drop = [], None
    for line in path.read_text().splitlines():
        cells = line.split("|")
        if line.startswith("|") and any(TIME_COLUMN in c for c in cells):
            drop = next(i for i, c in enumerate(cells) if TIME_COLUMN in c)
        elif not line.startswith("|"):
            drop = None
        if drop is not None and line.startswith("|"):
            line = "|".join(c for i, c in enumerate(cells) if i != drop)
        if not any(word in line.lower() for word in VOLATILE_WORDS):
            kept.append(line)
    return kept


def main(argv=None) -> int:
    args, sweep_args = parse_args(argv)
    worker_counts = [int(w) for w in args.workers.split(",")]
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    meta = provenance(threads=1)
    result = {"meta": meta, "sweep_args": sweep_args, "runs": {}}
    for workers in worker_counts:
        out = work / f"w{workers}"
        cmd = sweep_command(sweep_args, workers, out)
        run = {"command": " ".join(cmd[1:]), "parts": []}
        with open(work / f"w{workers}.log", "w") as log:
            kill = args.kill_after if workers == max(worker_counts) else 0
            seconds, code, killed = run_once(cmd, env, log, kill, out)
            run["parts"].append({"seconds": seconds, "returncode": code, "killed": killed})
            if killed:
                before = finished_cells(out)
                seconds, code, _ = run_once(cmd, env, log)
                run["parts"].append({"seconds": seconds, "returncode": code, "killed": False})
                rows = {Path(r["run_dir"]).name: r for r in read_rows(out)}
                after = finished_cells(out)
                run["finished_before_kill"] = len(before)
                run["redone_after_restart"] = sorted(
                    name for name, blob in before.items()
                    if after.get(name) != blob or rows[name]["status"] != "reused")
        run["seconds"] = sum(p["seconds"] for p in run["parts"])
        run["cells"] = len(read_rows(out))
        result["runs"][str(workers)] = run
        print(f"{workers} worker(s): {run['seconds']:.1f} s, {run['cells']} cells"
              + (f" (killed after {run['finished_before_kill']} finished, "
                 f"{len(run['redone_after_restart'])} redone)" if "finished_before_kill" in run
                 else ""), flush=True)
    first = work / f"w{worker_counts[0]}"
    result["identical_numbers"] = all(
        numbers(read_rows(first)) == numbers(read_rows(work / f"w{w}")) for w in worker_counts)
    result["identical_report_tables"] = all(
        report_tables(first) == report_tables(work / f"w{w}") for w in worker_counts)
    base = result["runs"][str(worker_counts[0])]["seconds"]
    result["speedup"] = {w: base / result["runs"][w]["seconds"] for w in result["runs"]}
    stem = result_stem(args.out_dir, "sweep", meta)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    for workers in worker_counts:
        for name in ("cells.csv", "report.md", "report.html", "sweep.yaml"):
            src = work / f"w{workers}" / name
            if src.exists():
                shutil.copy(src, f"{stem}_w{workers}_{name}")
    print(f"speed-up vs {worker_counts[0]} worker(s): "
          + ", ".join(f"{w}: {s:.2f}x" for w, s in result["speedup"].items())
          + f"; identical numbers: {result['identical_numbers']}, identical report tables: "
          f"{result['identical_report_tables']}")
    print(f"results: {stem}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
