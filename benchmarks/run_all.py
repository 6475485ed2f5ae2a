"""Rerun every benchmark whose numbers the README or docs quote, with one command.

    python benchmarks/run_all.py --quick     # every job at tiny sizes: checks all run end to end
    python benchmarks/run_all.py             # the full variant: the numbers the README quotes
    python benchmarks/run_all.py --reduced   # fewer seeds / cells: fits a 2-core CPU machine
    python benchmarks/run_all.py --list      # jobs, their commands and where they are quoted
    python benchmarks/run_all.py --only lottery-imp,genetic-init-std
    python benchmarks/run_all.py --tables benchmarks/results/run_...   # re-render tables.md

Every job runs its script in a process of its own (``benchmarks/<script> <args> --out-dir
<run>/<job>``; ``--quick`` appends the script's own ``--quick``: the same configuration at tiny
sizes; ``--reduced`` appends the job's reduced settings: ≥ 3 seeds everywhere, the
digits-dvs conv grid only at density 0.1, fewer timing rounds), with ``OMP_NUM_THREADS`` = the
job's threads and spikesculpt taken from ``src/``. A
failing job is recorded and the others still run (exit status 1 at the end). A job that needs
what this machine lacks (CUDA, an optional peer library) runs anyway and its script writes
"skipped: ..." rows.

The run folder, ``benchmarks/results/run_<machine>_<date>_<commit>/`` (``--quick``:
``runs/bench-quick/run_...``), holds every job's result files (JSON + CSV, tagged by the
script) and log, ``manifest.json`` (machine, git commit and whether the tree was dirty, date,
the command; per job: command, threads, status, seconds, files) and ``tables.md``: the
markdown tables in the layout of the README/docs tables they replace, each headed by where it
goes and which file and commit it came from (benchmarks/tables.py).

Lottery searches are kept in ``--work-root`` (default ``runs/bench-work/<commit>``): a rerun on
the same commit resumes them, another commit starts afresh (a dirty tree always does).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from machine import REPO, cpu_name, git_state, provenance, slug

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Job:
    """One benchmark invocation. ``quoted_in``: where its numbers appear (file › section)."""

    name: str
    script: str
    args: tuple[str, ...]
    threads: int
    quoted_in: tuple[str, ...]
    work: bool = False                       # takes --work DIR (resumable lottery searches)
    workers: bool = False                    # takes --workers N, --device (training runs)
    notes: str = ""
    reduced: tuple[str, ...] = ()            # appended in the reduced variant (last one wins)
    quick_args: tuple[str, ...] = field(default=("--quick",))


def _lottery(name, parts_args, quoted, notes=""):
    return Job(name, "bench_lottery.py", (*parts_args, "--threads", "1"), 1, quoted, work=True,
               notes=notes)


def _sparse(name, args, threads, quoted, workers=True, reduced=(), quick=()):
    return Job(name, "bench_sparse_methods.py", (*args, "--threads", str(threads)), threads,
               quoted, workers=workers, reduced=reduced, quick_args=("--quick", *quick))


SEEDS3 = ("--seeds", "0,1,2")

JOBS: tuple[Job, ...] = (
    Job("lif-mlp", "bench_lif_mlp.py", ("--threads", "2"), 2,
        ("README.md › Benchmarks › LIF training step (table)",
         "benchmarks/README.md › LIF MLP training step › Results"),
        reduced=("--repeats", "10")),
    Job("lif-mlp-cuda", "bench_lif_mlp.py",
        ("--device", "cuda", "--batch", "256", "--repeats", "10", "--threads", "2"), 2,
        ("README.md › Benchmarks › the GPU paragraph under the LIF table",),
        notes="needs CUDA (skipped rows otherwise)"),
    Job("lif-vggsnn-cuda", "bench_lif_conv.py",
        ("--device", "cuda", "--repeats", "6", "--steps", "5", "--warmup", "3", "--threads", "2"),
        2, ("README.md › Benchmarks › the GPU paragraph under the LIF table",),
        notes="needs CUDA (skipped rows otherwise)"),
    _sparse("sparse-digits-mlp", ("--dataset", "digits", "--model", "mlp", "--epochs", "30",
                                  "--seeds", "5", "--parts", "accuracy,sweep"), 1,
            ("README.md › Sparse training from scratch › digits table",
             "docs/methods.md › ESL › 'Why gradient and 25' (sweep, chosen on validation)"),
            reduced=("--seeds", "3")),
    _sparse("sparse-digits-dvs-conv", ("--dataset", "digits-dvs", "--model", "conv", "--epochs",
                                       "20", "--seeds", "5", "--parts", "accuracy,sweep"), 1,
            ("README.md › Sparse training from scratch › digits-dvs table",
             "docs/methods.md › ESL › 'Why gradient and 25' (sweep, chosen on validation)"),
            reduced=("--seeds", "3", "--densities", "0.1", "--parts", "accuracy"),
            quick=("--variants", "esl", "--parts", "accuracy")),  # digits covers the rest
    _sparse("sparse-overhead", ("--dataset", "digits", "--model", "mlp", "--parts",
                                "steps,overhead", "--overhead-repeats", "9"), 2,
            ("README.md › Sparse training from scratch › Training-time overhead of ESL "
             "(table)",), workers=False, reduced=("--overhead-repeats", "5")),
    _sparse("sparse-overhead-cuda", ("--device", "cuda", "--dataset", "digits", "--model", "conv",
                                     "--epochs", "10", "--parts", "overhead",
                                     "--overhead-repeats", "6"), 2,
            ("README.md › Training-time overhead › the H100 sentence",), workers=False),
    Job("sparse-inference", "bench_sparse_inference.py",
        ("--threads", "1", "--parts", "linear,activity,conv,model", "--epochs", "15"), 1,
        ("README.md › Efficiency › Linear layers, spiking input (table)",
         "README.md › Efficiency › A trained model (table)",
         "benchmarks/README.md › Sparse vs dense inference"),
        reduced=("--rounds", "5", "--parts", "linear,activity,model")),
    Job("sparse-inference-2t", "bench_sparse_inference.py",
        ("--threads", "2", "--parts", "linear,model", "--epochs", "15"), 2,
        ("README.md › Efficiency › the '2 threads' paragraph under the linear table",),
        reduced=("--rounds", "5")),
    _lottery("lottery-imp", ("--parts", "imp", *SEEDS3, "--rounds", "11", "--rate", "0.25",
                             "--rewind", "2ep"),
             ("README.md › Spiking lottery tickets › IMP on digits (table)",)),
    _lottery("lottery-early-time", ("--parts", "early-time", "--model", "conv", "--model-arg",
                                    '{"channels": [16, 32]}', "--et-timesteps", "8",
                                    "--et-rounds", "2", "--rate", "0.5", "--rewind", "2ep",
                                    "--prune", "layer", "--dense-first", *SEEDS3),
             ("README.md › Spiking lottery tickets › Early-time tickets (table)",)),
    _lottery("lottery-patch", ("--parts", "patch", *SEEDS3, "--patch-epochs", "20"),
             ("README.md › Spiking lottery tickets › Patch tickets (table)",)),
    _lottery("lottery-score", ("--parts", "score", *SEEDS3, "--score-rounds", "3",
                               "--score-rate", "0.5"),
             ("docs/lottery.md › What to expect (score / biprop table)",)),
    Job("genetic-init-std", "bench_genetic.py", ("--part", "init-std", "--seeds", "3",
                                                  "--threads", "2"), 2,
        ("docs/genetic.md › 'initial genes' row (init_std, chosen on validation)",)),
    Job("genetic-compression", "bench_genetic.py", ("--part", "compression", "--seeds", "3",
                                                     "--threads", "2"), 2,
        ("README.md › Genetic encoding › Benchmarks (table)",
         "benchmarks/README.md › Genetic encoding › Compression vs accuracy")),
    Job("genetic-evolution", "bench_genetic.py", ("--part", "evolution", "--seeds", "3",
                                                   "--threads", "2"), 2,
        ("README.md › Genetic encoding › the paragraph under the table (evolution vs none)",
         "benchmarks/README.md › Genetic encoding › Evolution vs none (table)")),
    Job("genetic-speed", "bench_genetic.py", ("--part", "speed", "--repeats", "5",
                                              "--threads", "2"), 2,
        ("README.md › Genetic encoding › batched population scoring sentence",
         "benchmarks/README.md › Genetic encoding › Batched population scoring (table)"),
        reduced=("--repeats", "3")),
    Job("event-data", "bench_event_data.py", ("--threads", "2"), 2,
        ("benchmarks/README.md › Event data (table)",)),
)


def job_command(job: Job, out_dir: Path, variant: str, work_root: Path | None,
                workers: int = 1, device: str = "cpu") -> list[str]:
    """The script's command line for this job (absolute paths); ``variant``: full, reduced
    or quick."""
    cmd = [sys.executable, str(HERE / job.script), *job.args]
    cmd += {"quick": job.quick_args, "reduced": job.reduced, "full": ()}[variant]
    if job.work and work_root is not None:
        cmd += ["--work", str(work_root / job.name)]
    if job.workers and workers > 1:
        cmd += ["--workers", str(workers)]
    if job.workers and device != "cpu":
        cmd += ["--device", device]
    return cmd + ["--out-dir", str(out_dir)]


def display(cmd: list[str]) -> str:
    """``cmd`` as a person would type it in the repository root."""
    shown = ["python"] + [str(Path(c).relative_to(REPO)) if c.startswith(str(REPO) + os.sep)
                          else c for c in cmd[1:]]
    return shlex.join(shown)


def job_env(job: Job) -> dict:
    """The environment of a job: its thread count, spikesculpt from this checkout's src/."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(job.threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"),
                                                    env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def select_jobs(only: str | None, skip: str | None) -> list[Job]:
    names = [j.name for j in JOBS]
    wanted = [n.strip() for n in only.split(",")] if only else names
    skipped = {n.strip() for n in skip.split(",")} if skip else set()
    unknown = (set(wanted) | skipped) - set(names)
    if unknown:
        raise SystemExit(f"unknown job(s) {', '.join(sorted(unknown))}; see --list")
    return [j for j in JOBS if j.name in wanted and j.name not in skipped]


def run_job(cmd: list[str], env: dict, log_path: Path, echo: bool) -> int:
    """Run ``cmd``, its output into ``log_path`` (and the console when ``echo``); exit status."""
    with open(log_path, "w") as log:
        log.write("$ " + display(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            if echo:
                print("    " + line, end="", flush=True)
        return proc.wait()


def children_cpu_seconds() -> float:
    """User + system CPU seconds of the finished child processes so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def run_folder(args, git: dict) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    commit = git["commit"][:7] + ("-dirty" if git["dirty"] else "")
    root = Path(args.out_root) if args.out_root else (
        REPO / "runs" / "bench-quick" if args.quick else HERE / "results")
    suffix = "" if variant(args) == "full" else "_" + variant(args)
    return root / f"run_{slug(cpu_name())}_{stamp}_{commit}{suffix}"


def variant(args) -> str:
    return "quick" if args.quick else "reduced" if args.reduced else "full"


def default_work_root(git: dict) -> Path:
    """Per commit, so a rerun resumes only searches made by the same code; fresh if dirty."""
    name = git["commit"][:12]
    if git["dirty"] or git["commit"] == "unknown":
        name += "-dirty-" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return REPO / "runs" / "bench-work" / name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="tiny sizes (each script's --quick): checks every job end to end")
    size.add_argument("--reduced", action="store_true",
                      help="fewer seeds and cells (>= 3 seeds): for a 2-core CPU machine")
    p.add_argument("--only", help="comma-separated job names (see --list)")
    p.add_argument("--skip", help="comma-separated job names to leave out")
    p.add_argument("--list", action="store_true", help="print the jobs and exit")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel training processes for the sparse-methods accuracy jobs "
                        "(each with 1 thread; 2 on a quiet 2-core machine)")
    p.add_argument("--device", default="cpu",
                   help="device of the sparse-methods accuracy jobs (e.g. cuda: the "
                        "digits-dvs conv grid takes hours on 2 CPU cores, minutes on a GPU)")
    p.add_argument("--out-root", help="where the run folder goes (default benchmarks/results/, "
                                      "--quick: runs/bench-quick/)")
    p.add_argument("--work-root", help="lottery search folders (default runs/bench-work/<commit>)")
    p.add_argument("--quiet", action="store_true", help="job output only into the logs")
    p.add_argument("--tables", metavar="RUN_DIR", help="only re-render RUN_DIR/tables.md")
    return p


def list_jobs(jobs: list[Job]) -> None:
    for job in jobs:
        print(f"{job.name}  ({job.threads} thread{'s' * (job.threads > 1)})"
              f"{'  [' + job.notes + ']' if job.notes else ''}")
        print(f"    python benchmarks/{job.script} {shlex.join(job.args)}")
        if job.reduced:
            print(f"    --reduced adds: {shlex.join(job.reduced)}")
        for where in job.quoted_in:
            print(f"    -> {where}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import tables  # benchmarks/tables.py

    if args.tables:
        path = tables.write_tables(Path(args.tables))
        print(f"wrote {path}")
        return 0
    jobs = select_jobs(args.only, args.skip)
    if args.list:
        list_jobs(jobs)
        return 0
    git = git_state()
    run_dir = run_folder(args, git)
    run_dir.mkdir(parents=True)
    work_root = Path(args.work_root) if args.work_root else default_work_root(git)
    manifest = {"variant": variant(args),
                **provenance(threads=0), "cpu_threads_available": os.cpu_count(),
                "work_root": str(work_root), "jobs": []}
    manifest.pop("torch_threads")  # per job below
    print(f"{len(jobs)} benchmark jobs ({manifest['variant']}) -> {run_dir}\n"
          f"commit {git['commit'][:12]}{' (dirty tree)' * bool(git['dirty'])}", flush=True)
    start = time.perf_counter()
    failed = 0
    for i, job in enumerate(jobs, 1):
        out_dir = run_dir / job.name
        out_dir.mkdir()
        cmd = job_command(job, out_dir, variant(args), work_root, args.workers, args.device)
        print(f"\n[{i}/{len(jobs)}] {job.name}: {display(cmd)}", flush=True)
        t0, cpu0 = time.perf_counter(), children_cpu_seconds()
        rc = run_job(cmd, job_env(job), run_dir / f"{job.name}.log", echo=not args.quiet)
        seconds, cpu = time.perf_counter() - t0, children_cpu_seconds() - cpu0
        status = "ok" if rc == 0 else f"failed (exit status {rc})"
        failed += rc != 0
        files = sorted(str(f.relative_to(run_dir)) for f in out_dir.iterdir())
        manifest["jobs"].append({"name": job.name, "script": job.script,
                                 "command": display(cmd),
                                 "threads": job.threads, "status": status,
                                 "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                                 "files": files,
                                 "log": f"{job.name}.log", "quoted_in": list(job.quoted_in)})
        manifest["wall_seconds"] = round(time.perf_counter() - start, 1)
        write_json(run_dir / "manifest.json", manifest)
        print(f"[{i}/{len(jobs)}] {job.name}: {status} in {seconds:.0f} s ({cpu:.0f} s CPU)",
              flush=True)
    tables_path = tables.write_tables(run_dir)
    total = time.perf_counter() - start
    cpu = sum(j["cpu_seconds"] for j in manifest["jobs"])
    print(f"\n{len(jobs) - failed}/{len(jobs)} jobs ok in {total / 60:.1f} min "
          f"({cpu / 60:.1f} CPU min); "
          f"manifest {run_dir / 'manifest.json'}; tables {tables_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
