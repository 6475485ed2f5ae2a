"""Sparse training from scratch: accuracy vs density, and the training-time overhead of rewiring.

Every run is a real ``spikesculpt train`` run (``run_training``: same data split, model, epochs,
optimizer and learning-rate schedule for every method; the model is picked on validation and
the test accuracy reported for it). Three parts, each optional:

``accuracy``  methods x densities x seeds -> test accuracy mean ± std (and the connection
              density actually reached), and paired differences over seeds with a 95% CI
              (every method vs dense and vs static, ESL's defaults vs every other method).
              Methods: dense (density 1), static, set, rigl, esl with its defaults, and esl
              with each other growth rule (random / gradient / hebbian).
``sweep``     ESL's own knobs at one density (growth rule x T_iter), chosen on VALIDATION
              accuracy: the validation accuracy of every candidate, the test accuracy of the
              chosen one only, and whether it is ESL's current default (how the defaults are
              chosen; the test split never picks anything).
``overhead``  whole-run training time of ESL / dense, measured side by side: dense and ESL runs
              alternate, and the ratio of their ``train_seconds`` is taken per pair (median over
              pairs), so machine drift cancels.
``runs``      the same whole runs inside one process, their epochs interleaved (rotating
              order), repeated over seeds: mean ratio with a 95% CI; steadier than
              ``overhead`` on a shared machine, and still the whole training run.
``steps``     the same question inside one process: dense, static, ESL and ESL-Hebbian train on
              one batch through a whole schedule's steps in interleaved blocks of 30 (total
              time ratio); steadier on a shared machine.

    python benchmarks/bench_sparse_methods.py --parts accuracy,overhead      # digits, mlp
    python benchmarks/bench_sparse_methods.py --dataset digits-dvs --model conv --epochs 20
    python benchmarks/bench_sparse_methods.py --quick                        # smoke test

Results: ``benchmarks/results/sparse_<dataset>-<model>_<machine>_<threads>t_<date>_<commit>``
``.{json,csv}`` (``--quick`` writes only with ``--out-dir``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import device_missing, provenance, result_stem, slug  # benchmarks/machine.py
from summary import (
    by_seed,
    choose_default,
    choose_on_validation,
    diff_ci,
    mean_ci95,
    mean_std,
    paired_difference,
    pct,
)

from spikesculpt.config import TrainConfig
from spikesculpt.experiments.train_run import run_training
from spikesculpt.methods import METHODS

DENSITIES = [1.0, 0.5, 0.2, 0.1, 0.05, 0.02]
GROWTHS = ("random", "gradient", "hebbian")


def esl_defaults() -> dict:
    """ESL's current defaults (``{"grow", "update_every", ...}``), from the method itself."""
    return dict(METHODS.get("esl").DEFAULTS)


def variant_table() -> dict:
    """label -> (method, sparse options): static, set, rigl, ``esl`` (its defaults) and
    ``esl-<rule>`` for every growth rule other than the default one (the default's row would
    repeat ``esl``)."""
    table = {"static": ("static", {}), "set": ("set", {}), "rigl": ("rigl", {}),
             "esl": ("esl", {})}
    for grow in GROWTHS:
        if grow != esl_defaults()["grow"]:
            table[f"esl-{grow}"] = ("esl", {"grow": grow})
    return table


def base_config(args, seed: int) -> TrainConfig:
    cfg = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                      timesteps=args.timesteps, seed=seed, device=args.device)
    if args.model_arg:
        cfg.model_kwargs = json.loads(args.model_arg)
    return cfg


def run_config(args, label: str, density: float, seed: int, **extra) -> TrainConfig:
    """The training config of one variant (``dense`` or a ``variant_table`` label)."""
    cfg = base_config(args, seed)
    if label == "dense":
        cfg.method = "dense"
    else:
        method, options = variant_table().get(label) or ("esl", {"grow": label[len("esl-"):]})
        cfg.method = method
        cfg.sparse.density = density
        for k, v in {**options, **extra}.items():
            setattr(cfg.sparse, k, v)
    return cfg


def one_run(args, label: str, density: float, seed: int, root: Path, **extra) -> dict:
    cfg = run_config(args, label, density, seed, **extra)
    out = root / f"{label}-{density}-{seed}-{'-'.join(f'{k}{v}' for k, v in extra.items())}"
    m = run_training(cfg, out=str(out), progress=False).metrics
    return {"variant": label, "density_target": density, "seed": seed, **extra,
            "test_accuracy": m["test_accuracy"], "val_accuracy": m["val_accuracy"],
            "density": m["density"], "mask_density": m.get("mask_density", m["density"]),
            "topology_change": m.get("topology_change", 0.0),
            "train_seconds": m["train_seconds"]}


def group(rows, keys) -> dict[tuple, list]:
    """Rows grouped by the values of ``keys`` (insertion order kept)."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return groups


def summarize(rows, keys, test: bool = True) -> list[dict]:
    """Per group of ``keys``: n, validation mean ± std, test mean ± std (unless ``test`` is
    False: a candidate of a selection), mean mask density."""
    out = []
    for key, rs in group(rows, keys).items():
        val = mean_std(r["val_accuracy"] for r in rs)
        row = {**dict(zip(keys, key)), "n": len(rs), "val_mean": val[0], "val_std": val[1],
               "mask_density": statistics.mean(r["mask_density"] for r in rs)}
        if test:
            row["test_mean"], row["test_std"] = mean_std(r["test_accuracy"] for r in rs)
        out.append(row)
    return out


def report_run(row: dict, show_test: bool) -> None:
    extra = {k: row[k] for k in ("update_every",) if k in row}
    acc = f"val {100 * row['val_accuracy']:.2f}%"
    if show_test:
        acc += f" test {100 * row['test_accuracy']:.2f}%"
    print(f"  seed {row['seed']} d={row['density_target']:<5} {row['variant']:<13} "
          f"{extra or ''} {acc}", flush=True)


def run_jobs(args, root, jobs, show_test: bool = True) -> list[dict]:
    """Run ``(label, density, seed, extra)`` jobs, in ``--workers`` processes if > 1 (each with
    ``--threads`` threads; on a GPU they share the device). Results in job order."""
    if args.workers <= 1:
        out = []
        for label, density, seed, extra in jobs:
            out.append(one_run(args, label, density, seed, root, **extra))
            report_run(out[-1], show_test)
        return out
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"),
                                initializer=torch.set_num_threads,
                                initargs=(args.threads,)) as pool:
        futures = [pool.submit(one_run, args, label, density, seed, root, **extra)
                   for label, density, seed, extra in jobs]
        out = []
        for fut in futures:
            out.append(fut.result())
            report_run(out[-1], show_test)
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
    paired = paired_comparisons(rows, args)
    print_accuracy(summary, paired, args)
    return {"runs": rows, "summary": summary, "paired": paired}


def paired_comparisons(rows, args) -> list[dict]:
    """Test-accuracy differences over seeds (same seed = same split and initial stream), 95% CI:
    every variant − dense and − static at each density, and ``esl`` − every other variant."""
    tests = {key: by_seed(rs) for key, rs in group(rows, ["variant", "density_target"]).items()}
    dense = tests.get(("dense", 1.0), {})
    out = []
    for density in (d for d in args.densities if d < 1.0):
        for label in args.variants:
            here = tests.get((label, density))
            baselines = {"dense": dense, "static": tests.get(("static", density))}
            if label == "esl":
                baselines.update({other: tests.get((other, density)) for other in args.variants
                                  if other not in ("esl", "static")})
            for base, values in baselines.items():
                if base == label or not here or not values:
                    continue
                d = paired_difference(here, values)
                if d is not None:
                    out.append({"variant": label, "baseline": base, "density_target": density,
                                **d})
    return out


def print_accuracy(summary, paired, args) -> None:
    dense = next(s for s in summary if s["variant"] == "dense")
    print(f"\ntest accuracy (%) mean ± std over {args.seeds} seeds; dense "
          f"{pct(dense['test_mean'], dense['test_std'])}")
    sparse = [d for d in args.densities if d < 1]
    print("variant".ljust(14) + "".join(f"d={d:<14}" for d in sparse))
    for label in args.variants:
        cells = [pct(s["test_mean"], s["test_std"]).ljust(16) for d in sparse
                 for s in summary if s["variant"] == label and s["density_target"] == d]
        print(label.ljust(14) + "".join(cells))
    print("\npaired differences (points), mean [95% CI] over seeds:")
    for d in paired:
        print(f"  d={d['density_target']:<5} {d['variant']:<12} - {d['baseline']:<12} "
              f"{diff_ci(d)}")


def part_sweep(args, root) -> dict:
    """ESL's growth rule x T_iter at ``--sweep-density``, chosen on validation accuracy (the
    current default listed first, so it is kept on a tie)."""
    default = esl_defaults()
    candidates = [(g, e) for g in GROWTHS for e in args.sweep_every]
    candidates.sort(key=lambda c: c != (default["grow"], default["update_every"]))
    jobs = [(f"esl-{grow}", args.sweep_density, seed, {"update_every": every})
            for seed in range(args.seeds) for grow, every in candidates]
    rows = run_jobs(args, root, jobs, show_test=False)
    return choose_sweep(rows, default)


def choose_sweep(rows: list[dict], default: dict) -> dict:
    """Pick the candidate (variant, update_every) with the best mean validation accuracy; keep
    the test accuracy of the chosen candidate only (the other runs' test numbers are dropped
    from the results, so nothing downstream can choose on them). Each candidate also gets its
    paired validation difference to the current default (is a change beyond seed noise?)."""
    table = summarize(rows, ["variant", "update_every"], test=False)
    current = {"grow": default["grow"], "update_every": default["update_every"]}
    val = {key: by_seed(rs, "val_accuracy")
           for key, rs in group(rows, ["variant", "update_every"]).items()}
    base = val.get((f"esl-{current['grow']}", current["update_every"]))
    for c in table:
        c["val_minus_default"] = (paired_difference(val[(c["variant"], c["update_every"])], base)
                                  if base else None)
    default_index = next((i for i, c in enumerate(table)
                          if (c["variant"], c["update_every"]) ==
                          (f"esl-{current['grow']}", current["update_every"])), None)
    if default_index is None:
        best = table[choose_on_validation(table)]
        top = best
    else:
        chosen_index, top_index = choose_default(table, default_index)
        best, top = table[chosen_index], table[top_index]
    is_best = [r["variant"] == best["variant"] and r["update_every"] == best["update_every"]
               for r in rows]
    test = mean_std(r["test_accuracy"] for r, b in zip(rows, is_best) if b)
    chosen = {"variant": best["variant"], "grow": best["variant"][len("esl-"):],
              "update_every": best["update_every"], "n": best["n"], "val_mean": best["val_mean"],
              "val_std": best["val_std"], "val_minus_default": best["val_minus_default"],
              "test_mean": test[0], "test_std": test[1]}
    chosen["is_current_default"] = (chosen["grow"], chosen["update_every"]) == \
        (current["grow"], current["update_every"])
    runs = [r if b else {k: v for k, v in r.items() if k != "test_accuracy"}
            for r, b in zip(rows, is_best)]
    print(f"\nESL sweep at density {rows[0]['density_target']}: VALIDATION accuracy (%) of "
          f"every candidate, mean ± std over seeds; paired difference to the current default")
    for c in table:
        mark = "  <- chosen" if c is best else ("  <- best mean, within noise" if c is top else "")
        print(f"  {c['variant']:<13} T_iter={c['update_every']:<4} "
              f"{pct(c['val_mean'], c['val_std'])}  {diff_ci(c['val_minus_default'])}{mark}")
    chosen["best_mean"] = {"variant": top["variant"], "update_every": top["update_every"],
                           "val_minus_default": top["val_minus_default"]}
    print("rule: the default stays unless the validation-best candidate beats it with a paired "
          "95% CI above 0")
    print(f"chosen on validation: grow {chosen['grow']}, T_iter {chosen['update_every']}; its "
          f"test accuracy {pct(test[0], test[1])} (n = {chosen['n']}); current default grow "
          f"{current['grow']}, T_iter {current['update_every']}: "
          f"{'the same' if chosen['is_current_default'] else 'different'}")
    return {"runs": runs, "candidates": table, "chosen": chosen, "current_default": current}


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


def part_runs(args, root) -> dict:
    """Whole training runs in one process, their epochs interleaved: each repeat builds dense,
    ESL (its defaults) and ESL with Hebbian growth exactly as ``spikesculpt train`` does (same
    data pipeline, encoding, Trainer, method callbacks and rewiring schedule; seed = repeat)
    and trains them one epoch at a time in rotating order, so each method's epochs meet the
    same machine state as the others'. Per repeat: ratio = Σ epochs' train_seconds / dense's
    (evaluation is outside ``train_seconds``, as in a real run). Reported: the mean ratio over
    repeats with a 95% Student-t interval, and the median. Sequential whole runs
    (``overhead``) carry this host's minute-scale drift (±15%) into every ratio; epochs of a
    few hundred ms interleaved do not."""
    from spikesculpt.experiments.train_run import build
    from spikesculpt.train.trainer import Trainer

    labels = ["dense", "esl", "esl-hebbian"]
    repeats, work = [], []   # seconds; steps and mask updates (the same work for every repeat)
    for rep in range(args.overhead_repeats):
        trainers = {}
        for label in labels:
            cfg = run_config(args, label, args.sweep_density, rep)
            splits, model, callbacks = build(cfg)
            trainers[label] = Trainer(model, splits, cfg, callbacks, progress=False)
        for epoch in range(args.epochs):
            k = (epoch + rep) % len(labels)
            for label in labels[k:] + labels[:k]:
                trainers[label].train_epochs(until=epoch + 1)
        repeats.append({label: t.train_seconds for label, t in trainers.items()})
        work.append({label: {"steps": t.step,
                             "mask_updates": sum(len(getattr(cb, "updates", ()))
                                                 for cb in t.callbacks)}
                     for label, t in trainers.items()})
    result = {"repeats": repeats, "work": work}
    print(f"\nwhole runs ({args.epochs} epochs each), epochs interleaved in one process, "
          f"{len(repeats)} repeats (seeds 0..{len(repeats) - 1}):")
    for label in labels[1:]:
        ratios = [r[label] / r["dense"] for r in repeats]
        stat = mean_ci95(ratios)
        low, high = stat["ci95"]
        result[label] = {"ratios": ratios, **stat, "median": statistics.median(ratios)}
        print(f"  {label} / dense: mean {stat['mean']:.3f} [{low:.3f}, {high:.3f}] (95% CI), "
              f"median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-"
              f"{max(ratios):.3f}")
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
    from spikesculpt.experiments.train_run import build_model
    from spikesculpt.methods import create_method
    from spikesculpt.train.optim import build_optimizer

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


RESULTS = Path(__file__).resolve().parent / "results"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--model", default="mlp")
    p.add_argument("--model-arg", default=None, help="model kwargs as JSON")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. N-1)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel runs (processes) for the accuracy and sweep parts")
    p.add_argument("--parts", default="accuracy,sweep,overhead",
                   help="comma-separated: accuracy, sweep, overhead, runs, steps")
    p.add_argument("--densities", default=",".join(map(str, DENSITIES)))
    p.add_argument("--variants", default=None,
                   help=f"comma-separated (default: {','.join(variant_table())})")
    p.add_argument("--sweep-density", type=float, default=0.1)
    p.add_argument("--sweep-every", default="10,25,50,100")
    p.add_argument("--overhead-repeats", type=int, default=8,
                   help="rounds of the overhead part, repeats of the runs part")
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run; writes files only with --out-dir")
    p.add_argument("--out-dir", default=None, help=f"default {RESULTS}")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.densities = [float(d) for d in args.densities.split(",")]
    args.variants = (args.variants or ",".join(variant_table())).split(",")
    args.sweep_every = [int(v) for v in args.sweep_every.split(",")]
    args.parts = args.parts.split(",")
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(PARTS)}")
    if args.quick:
        args.epochs, args.seeds, args.densities = 2, 1, [1.0, 0.1]
        args.sweep_every, args.overhead_repeats = [10], 1
    return args


def write_results(results: dict, args) -> Path:
    meta = results["meta"]
    stem = result_stem(args.out_dir or RESULTS, f"sparse_{slug(args.dataset)}-{slug(args.model)}",
                       meta)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    rows = [dict(part="accuracy", **s) for s in results.get("accuracy", {}).get("summary", [])]
    if "sweep" in results:
        rows += [dict(part="sweep-candidate", **s) for s in results["sweep"]["candidates"]]
        rows.append(dict(part="sweep-chosen", **results["sweep"]["chosen"]))
    if rows:
        import csv

        cols = list(dict.fromkeys(k for r in rows for k in r))
        with open(stem.with_suffix(".csv"), "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    return stem


PARTS = {"accuracy": part_accuracy, "sweep": part_sweep, "overhead": part_overhead,
         "runs": part_runs, "steps": part_steps}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    meta = {"dataset": args.dataset, "model": args.model, "model_arg": args.model_arg,
            "epochs": args.epochs, "timesteps": args.timesteps, "seeds": args.seeds,
            "workers": args.workers,
            **provenance(torch.get_num_threads(), args.device)}
    print(f"sparse methods on {args.dataset}/{args.model}, {args.epochs} epochs, "
          f"T={args.timesteps}; {meta['gpu'] or meta['cpu']}, {meta['torch_threads']} threads, "
          f"torch {meta['torch']}, commit {meta['git_commit'][:7]}", flush=True)
    results = {"meta": meta}
    missing = device_missing(args.device)
    if missing:  # e.g. --device cuda on a CPU machine: say so, do not crash
        print(missing)
        results["skipped"] = missing
        if not args.quick or args.out_dir is not None:
            print(f"wrote {write_results(results, args)}.json")
        return 0
    start = time.perf_counter()
    from spikesculpt.data import load_dataset

    load_dataset(args.dataset, timesteps=args.timesteps)  # build any data cache once, up front
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for part in args.parts:
            print(f"\n== {part}", flush=True)
            results[part] = PARTS[part](args, root)
    results["meta"]["wall_seconds"] = time.perf_counter() - start
    if args.quick and args.out_dir is None:
        return 0
    stem = write_results(results, args)
    print(f"\nwrote {stem}.json (+ .csv of the accuracy and sweep summaries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
