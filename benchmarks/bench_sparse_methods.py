"""Sparse training from scratch: accuracy vs density, and the training-time overhead of rewiring.

Every run is a real ``spikesculpt train`` run (``run_training``: same data split, model, epochs,
optimizer and learning-rate schedule for every method; the model is picked on validation and
the test accuracy reported for it). Three parts, each optional:

``accuracy``  methods x densities x seeds -> test accuracy mean ± std (and the connection
              density actually reached). Methods: dense (density 1), static, set, rigl, and esl
              with each growth rule (random / gradient / hebbian).
``sweep``     ESL's own knobs at one density (growth rule x T_iter): how its defaults were chosen.
``overhead``  whole-run training time of ESL / dense, measured side by side: dense and ESL runs
              alternate, and the ratio of their ``train_seconds`` is taken per pair (median over
              pairs), so machine drift cancels.
``steps``     the same question inside one process: dense, static, ESL and ESL-Hebbian train on
              one batch through a whole schedule's steps in interleaved blocks of 30 (total
              time ratio); steadier on a shared machine.

    python benchmarks/bench_sparse_methods.py --parts accuracy,overhead      # digits, mlp
    python benchmarks/bench_sparse_methods.py --dataset digits-dvs --model conv --epochs 20
    python benchmarks/bench_sparse_methods.py --quick                        # smoke test

Results: ``benchmarks/results/sparse_<dataset>-<model>_<cpu>_<threads>t_<date>.{json,csv}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from machine import cpu_name, slug  # benchmarks/machine.py

from spikesculpt.config import TrainConfig
from spikesculpt.train.run import run_training

DENSITIES = [1.0, 0.5, 0.2, 0.1, 0.05, 0.02]
VARIANTS = {  # label -> (method, sparse options)
    "static": ("static", {}),
    "set": ("set", {}),
    "rigl": ("rigl", {}),
    "esl-random": ("esl", {"grow": "random"}),
    "esl-gradient": ("esl", {"grow": "gradient"}),
    "esl-hebbian": ("esl", {"grow": "hebbian"}),
}






def base_config(args, seed: int) -> TrainConfig:
    cfg = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                      timesteps=args.timesteps, seed=seed, device=args.device)
    if args.model_arg:
        cfg.model_kwargs = json.loads(args.model_arg)
    return cfg


def one_run(args, label: str, density: float, seed: int, root: Path, **extra) -> dict:
    cfg = base_config(args, seed)
    if label == "dense":
        cfg.method = "dense"
    else:
        method, options = VARIANTS.get(label, ("esl", {}))
        cfg.method = method
        cfg.sparse.density = density
        for k, v in {**options, **extra}.items():
            setattr(cfg.sparse, k, v)
    out = root / f"{label}-{density}-{seed}-{'-'.join(f'{k}{v}' for k, v in extra.items())}"
    m = run_training(cfg, out=str(out), progress=False).metrics
    return {"variant": label, "density_target": density, "seed": seed, **extra,
            "test_accuracy": m["test_accuracy"], "val_accuracy": m["val_accuracy"],
            "density": m["density"], "mask_density": m.get("mask_density", m["density"]),
            "topology_change": m.get("topology_change", 0.0),
            "train_seconds": m["train_seconds"]}


def summarize(rows, keys) -> list[dict]:
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        acc = [r["test_accuracy"] for r in rs]
        out.append({**dict(zip(keys, key)), "n": len(rs),
                    "test_mean": statistics.mean(acc),
                    "test_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                    "val_mean": statistics.mean(r["val_accuracy"] for r in rs),
                    "mask_density": statistics.mean(r["mask_density"] for r in rs)})
    return out


def run_jobs(args, root, jobs) -> list[dict]:
    """Run ``(label, density, seed, extra)`` jobs, in ``--workers`` processes if > 1 (each with
    ``--threads`` threads; on a GPU they share the device). Results in job order."""
    if args.workers <= 1:
        out = []
        for label, density, seed, extra in jobs:
            out.append(one_run(args, label, density, seed, root, **extra))
            print(f"  seed {seed} d={density:<5} {label:<13} {extra or ''} "
                  f"test {100 * out[-1]['test_accuracy']:.2f}%", flush=True)
        return out
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"),
                                initializer=torch.set_num_threads,
                                initargs=(args.threads,)) as pool:
        futures = [pool.submit(one_run, args, label, density, seed, root, **extra)
                   for label, density, seed, extra in jobs]
        out = []
        for (label, density, seed, extra), fut in zip(jobs, futures):
            out.append(fut.result())
            print(f"  seed {seed} d={density:<5} {label:<13} {extra or ''} "
                  f"test {100 * out[-1]['test_accuracy']:.2f}%", flush=True)
        return out


def part_accuracy(args, root) -> dict:
    jobs = []
    for seed in range(args.seeds):
        jobs.append(("dense", 1.0, seed, {}))
        for density in args.densities:
            if density == 1.0:
                continue
            for label in args.variants:
                jobs.append((label, density, seed, {}))
    rows = run_jobs(args, root, jobs)
    summary = summarize(rows, ["variant", "density_target"])
    dense = next(s for s in summary if s["variant"] == "dense")
    print(f"\ntest accuracy (%) mean ± std over {args.seeds} seeds; dense "
          f"{100 * dense['test_mean']:.2f} ± {100 * dense['test_std']:.2f}")
    header = "variant".ljust(14) + "".join(f"d={d:<12}" for d in args.densities if d < 1)
    print(header)
    for label in args.variants:
        cells = []
        for d in args.densities:
            if d == 1.0:
                continue
            s = next(x for x in summary if x["variant"] == label and x["density_target"] == d)
            cells.append(f"{100 * s['test_mean']:5.2f}±{100 * s['test_std']:4.2f}  ")
        print(label.ljust(14) + "".join(cells))
    return {"runs": rows, "summary": summary}


def part_sweep(args, root) -> dict:
    jobs = [(f"esl-{grow}", args.sweep_density, seed, {"update_every": every})
            for seed in range(args.seeds) for grow in ("random", "gradient", "hebbian")
            for every in args.sweep_every]
    rows = run_jobs(args, root, jobs)
    summary = summarize(rows, ["variant", "update_every"])
    print(f"\nESL sweep at density {args.sweep_density}: test accuracy (%)")
    for s in summary:
        print(f"  {s['variant']:<13} T_iter={s['update_every']:<4} "
              f"{100 * s['test_mean']:.2f} ± {100 * s['test_std']:.2f}")
    return {"runs": rows, "summary": summary}


def part_overhead(args, root) -> dict:
    """dense / ESL (its defaults) / ESL with Hebbian growth, interleaved in rotating order."""
    labels = ["dense", "esl", "esl-hebbian"]
    rounds = []
    for rep in range(args.overhead_repeats):
        order = labels[rep % 3:] + labels[:rep % 3]
        t = {}
        for label in order:
            sub = root / f"overhead-{rep}"  # fresh directories: a finished config is a no-op
            t[label] = one_run(args, label, args.sweep_density, 0, sub)["train_seconds"]
        rounds.append(t)
    result = {"rounds": rounds}
    for label in labels[1:]:
        ratios = [r[label] / r["dense"] for r in rounds]
        result[f"{label}_median_ratio"] = statistics.median(ratios)
        print(f"\n{label} (density {args.sweep_density}) / dense whole-run training time: median "
              f"{statistics.median(ratios):.3f} over {len(ratios)} interleaved rounds "
              f"(range {min(ratios):.3f}-{max(ratios):.3f})")
    return result


def part_steps(args, root) -> dict:
    """Training-step time over one whole schedule, in one process: dense, static, ESL (defaults)
    and ESL with Hebbian growth step through the same batch in interleaved blocks of 30 steps
    (rotating order), so all see the same machine state; reported: total time of each over the
    whole schedule / dense's. Less exposed to a shared machine's noise than ``overhead``
    (whole runs in sequence), and it isolates the method's cost: no data loading, evaluation
    or file writing."""
    from torch import nn

    from spikesculpt.data import load_dataset
    from spikesculpt.methods import create_method
    from spikesculpt.train.optim import build_optimizer
    from spikesculpt.train.run import build_model

    cfg = base_config(args, 0)
    splits = load_dataset(args.dataset, timesteps=args.timesteps)
    steps_per_epoch = -(-len(splits.train) // cfg.batch_size)
    total = steps_per_epoch * args.epochs
    x, y = next(iter(torch.utils.data.DataLoader(splits.train, batch_size=cfg.batch_size)))
    if splits.info.kind == "frames":
        x = x.transpose(0, 1)
    else:
        x = x.unsqueeze(0).expand(args.timesteps, *x.shape)
    device = torch.device(args.device)
    x, y = x.to(device), y.to(device)
    variants = {"dense": None, "static": ("static", {}), "esl": ("esl", {}),
                "esl-hebbian": ("esl", {"grow": "hebbian"})}
    runs = {}
    for label, spec in variants.items():
        model = build_model(cfg, splits.info).to(device)
        opt = build_optimizer(model.parameters(), cfg)
        if spec:
            m = create_method(spec[0], density=args.sweep_density, **spec[1])
            m.prepare_model(model)
            m.attach(model, opt, total_steps=total, steps_per_epoch=steps_per_epoch)
        runs[label] = (model, opt)

    def block(model, opt, n):
        for _ in range(n):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x).float().mean(0), y).backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    spent = {k: 0.0 for k in runs}
    labels = list(runs)
    done, r = 0, 0
    while done < total:
        n = min(30, total - done)
        for label in labels[r % 4:] + labels[:r % 4]:
            t0 = time.perf_counter()
            block(*runs[label], n)
            spent[label] += time.perf_counter() - t0
        done, r = done + n, r + 1
    result = {"total_steps": total, "seconds": spent,
              **{f"{k}_ratio": spent[k] / spent["dense"] for k in labels[1:]}}
    print(f"\n{total} training steps each, interleaved blocks of 30, one process:")
    for k in labels:
        print(f"  {k:<12} {1e3 * spent[k] / total:7.3f} ms/step   x dense "
              f"{spent[k] / spent['dense']:.3f}")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--model", default="mlp")
    p.add_argument("--model-arg", default=None, help="model kwargs as JSON")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel runs (processes) for the accuracy and sweep parts")
    p.add_argument("--parts", default="accuracy,sweep,overhead")
    p.add_argument("--densities", default=",".join(map(str, DENSITIES)))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--sweep-density", type=float, default=0.1)
    p.add_argument("--sweep-every", default="10,25,50,100")
    p.add_argument("--overhead-repeats", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="tiny smoke run, writes nothing")
    p.add_argument("--out-dir", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    args.densities = [float(d) for d in args.densities.split(",")]
    args.variants = args.variants.split(",")
    args.sweep_every = [int(v) for v in args.sweep_every.split(",")]
    if args.quick:
        args.epochs, args.seeds, args.densities = 2, 1, [1.0, 0.1]
        args.sweep_every, args.overhead_repeats = [10], 2
    torch.set_num_threads(args.threads)
    meta = {"dataset": args.dataset, "model": args.model, "epochs": args.epochs,
            "device": args.device,
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
            "timesteps": args.timesteps, "seeds": args.seeds, "cpu": cpu_name(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    print(f"sparse methods on {args.dataset}/{args.model}, {args.epochs} epochs, "
          f"T={args.timesteps}; {meta['cpu']}, {meta['torch_threads']} threads, "
          f"torch {meta['torch']}", flush=True)
    results = {"meta": meta}
    start = time.perf_counter()
    from spikesculpt.data import load_dataset

    load_dataset(args.dataset, timesteps=args.timesteps)  # build any data cache once, up front
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for part in args.parts.split(","):
            print(f"\n== {part}", flush=True)
            results[part] = {"accuracy": part_accuracy, "sweep": part_sweep,
                             "overhead": part_overhead, "steps": part_steps}[part](args, root)
    results["meta"]["wall_seconds"] = time.perf_counter() - start
    if args.quick:
        return 0
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = out / (f"sparse_{slug(args.dataset)}-{slug(args.model)}_{slug(meta['gpu'] or meta['cpu'])}_"
                  f"{meta['torch_threads']}t_{stamp}")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    rows = [dict(part=part, **s) for part in ("accuracy", "sweep")
            if part in results for s in results[part]["summary"]]
    if rows:
        import csv

        cols = list(dict.fromkeys(k for r in rows for k in r))
        with open(stem.with_suffix(".csv"), "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    print(f"\nwrote {stem}.json" + (" and .csv" if rows else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
