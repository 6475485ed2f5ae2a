"""Spiking lottery tickets: IMP vs dense and controls, early-time search cost, patch tickets.

Every search is a real ``spikesculpt lottery`` search (``run_lottery``) and every training a real
run (same data split, model, epochs, optimizer and schedule; models picked on validation, test
accuracy reported for them). Searches live in ``--work DIR`` (default ``runs/bench-lottery``):
re-running the script reuses finished searches and resumes interrupted ones, so a long benchmark
can be split over several invocations (e.g. ``--seeds 0`` then ``--seeds 0,1``...).

``imp``         IMP (global magnitude, rewinding) down to >= 95% sparsity, with the random
                re-initialisation and random pruning controls, per seed; accuracy per level,
                mean ± std over seeds. Goal (issue 6): within 0.5 points of dense at >= 95%
                sparsity and above random re-initialisation.
``early-time``  the same IMP search with and without ``--early-time``, interleaved per seed:
                search wall time and CPU time ratio (without / with) and the final ticket's
                accuracy (trained with the full T in both). Goal >= 1.4x at equal accuracy.
``patch``       the CPU-sized Spikformer with patch tickets: accuracy, kept-token fraction and
                the spikes after the patch embedding (per test sample) vs ``patch_keep``.
``score``       score tickets of untrained weights (edge-popup) and their binary-weight variant
                (biprop) at densities (1 − ``--score-rate``)^k, k = 1 .. ``--score-rounds``.

No part chooses anything on the test split (every training keeps its best-validation epoch).
Comparisons are paired over seeds (same seed = same split and initial weights): mean difference
and 95% CI — IMP: ticket − dense, ticket − each control per level; early-time: ticket with −
without; patch: every keep − keep 1.0; score: every level − the trained dense level 0.

    python benchmarks/bench_lottery.py --parts imp --seeds 0,1,2
    python benchmarks/bench_lottery.py --parts early-time,patch --seeds 0,1,2
    python benchmarks/bench_lottery.py --quick                       # smoke test, writes nothing

Results: ``benchmarks/results/lottery_<parts>_<machine>_<threads>t_<date>_<commit>.{json,csv}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import provenance, result_stem, slug  # benchmarks/machine.py
from summary import diff_ci, mean_std, paired_difference

from spikesculpt.config import TrainConfig
from spikesculpt.experiments.lottery import run_lottery
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.train_run import run_training


def paired(a: list, b: list, seeds: list) -> dict | None:
    """Paired difference of two per-seed lists (aligned with ``seeds``), see summary.py."""
    return paired_difference(dict(zip(seeds, a)), dict(zip(seeds, b)))


def fmt(values) -> str:
    m, s = mean_std(values)
    return f"{100 * m:6.2f}±{100 * s:4.2f}" if m == m else "     -     "


# --------------------------------------------------------------------------- imp
def imp_configs(args, seed: int):
    train = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                        timesteps=args.timesteps, seed=seed, device="cpu",
                        model_kwargs=json.loads(args.model_arg))
    lottery = LotteryConfig(strategy="imp", rounds=args.rounds, rate=args.rate,
                            rewind=args.rewind, prune=args.prune, dense_first=args.dense_first,
                            controls=["reinit", "random"])
    return train, lottery


def part_imp(args, work: Path) -> dict:
    summaries = []
    for seed in args.seeds:
        train, lottery = imp_configs(args, seed)
        name = (f"imp-{slug(args.model + args.model_arg)}-{args.prune}{'-df' * args.dense_first}"
                f"-r{args.rate}-seed{seed}")
        result = run_lottery(train, lottery, out=str(work / name), resume=True, progress=False)
        summaries.append(result.summary)
        print(f"  seed {seed}: {result.status} ({result.path})", flush=True)
    rows = []
    for k in range(args.rounds + 1):
        lv = [s["levels"][k] for s in summaries]
        row = {"level": k, "density": statistics.mean(r["density"] for r in lv),
               "tickets": [r["test_accuracy"] for r in lv]}
        for kind in ("reinit", "random"):
            row[kind] = [next((c["test_accuracy"] for c in s["controls"].get(kind, [])
                               if c["level"] == k), None) for s in summaries]
        rows.append(row)
    dense = rows[0]["tickets"]
    for r in rows:
        r["paired"] = {"dense": paired(r["tickets"], dense, args.seeds) if r["level"] else None,
                       "reinit": paired(r["tickets"], r["reinit"], args.seeds),
                       "random": paired(r["tickets"], r["random"], args.seeds)}
    print(f"\nIMP on {args.dataset}/{args.model} {args.model_arg}, {args.epochs} epochs, "
          f"T={args.timesteps}, rate {args.rate}, rewind {args.rewind}, {args.prune}; test "
          f"accuracy (%) mean±std over seeds {args.seeds}")
    print(f"{'level':>5} {'density':>8} {'sparsity':>8} {'ticket':>12} {'Δ dense':>8} "
          f"{'reinit':>12} {'random':>12}")
    for r in rows:
        delta = 100 * (mean_std(r["tickets"])[0] - mean_std(dense)[0])
        print(f"{r['level']:>5} {r['density']:8.4f} {1 - r['density']:8.4f} "
              f"{fmt(r['tickets']):>12} {delta:+8.2f} {fmt(r['reinit']):>12} "
              f"{fmt(r['random']):>12}")
    print("paired differences (points), mean [95% CI] over seeds: ticket - dense | ticket - "
          "reinit | ticket - random")
    for r in rows[1:]:
        print(f"{r['level']:>5} " + " | ".join(diff_ci(r["paired"][k])
                                              for k in ("dense", "reinit", "random")))
    goal = next((r for r in rows if 1 - r["density"] >= 0.95), None)
    verdict = None
    if goal is not None:
        delta = mean_std(goal["tickets"])[0] - mean_std(dense)[0]
        above = mean_std(goal["tickets"])[0] > mean_std(goal["reinit"])[0]
        verdict = {"level": goal["level"], "sparsity": 1 - goal["density"],
                   "delta_points": 100 * delta, "within_half_point": delta >= -0.005,
                   "above_reinit": bool(above)}
        print(f"goal at sparsity {100 * (1 - goal['density']):.1f}% (level {goal['level']}): "
              f"{100 * delta:+.2f} points vs dense (goal >= -0.5: "
              f"{'met' if verdict['within_half_point'] else 'NOT met'}); above random "
              f"re-init: {'yes' if above else 'NO'}")
    return {"rows": rows, "goal": verdict, "summaries": summaries}


# --------------------------------------------------------------------------- early-time
def part_early_time(args, work: Path) -> dict:
    pairs = []
    for i, seed in enumerate(args.seeds):
        train = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                            timesteps=args.et_timesteps, seed=seed, device="cpu",
                            model_kwargs=json.loads(args.model_arg))
        res = {}
        order = (False, True) if i % 2 == 0 else (True, False)
        for et in order:
            lottery = LotteryConfig(strategy="imp", rounds=args.et_rounds, rate=args.rate,
                                    rewind=args.rewind, prune=args.prune, early_time=et,
                                    evaluate="ends", dense_first=args.dense_first)
            name = (f"et{int(et)}-{slug(args.model + args.model_arg)}-{args.prune}"
                    f"{'-df' * args.dense_first}-T{args.et_timesteps}-r{args.et_rounds}"
                    f"-seed{seed}")
            res[et] = run_lottery(train, lottery, out=str(work / name), resume=True,
                                  progress=False).summary
        a, b = res[False], res[True]
        pair = {"seed": seed, "t_prime": b["early_time"]["timesteps"],
                "normalised_kl": b["early_time"]["normalised_kl"],
                "search_s_without": a["search_seconds"], "search_s_with": b["search_seconds"],
                "search_cpu_without": a["search_cpu_seconds"],
                "search_cpu_with": b["search_cpu_seconds"],
                "wall_ratio": a["search_seconds"] / b["search_seconds"],
                "cpu_ratio": a["search_cpu_seconds"] / b["search_cpu_seconds"],
                "ticket_without": a["levels"][-1]["test_accuracy"],
                "ticket_with": b["levels"][-1]["test_accuracy"],
                "density": b["levels"][-1]["density"]}
        pairs.append(pair)
        print(f"  seed {seed}: T'={pair['t_prime']} search {pair['search_s_without']:.1f} s -> "
              f"{pair['search_s_with']:.1f} s (wall x{pair['wall_ratio']:.2f}, CPU "
              f"x{pair['cpu_ratio']:.2f}); ticket {100 * pair['ticket_without']:.2f}% vs "
              f"{100 * pair['ticket_with']:.2f}%", flush=True)
    wall = statistics.median(p["wall_ratio"] for p in pairs)
    cpu = statistics.median(p["cpu_ratio"] for p in pairs)
    seeds = [p["seed"] for p in pairs]
    ticket_diff = paired([p["ticket_with"] for p in pairs],
                         [p["ticket_without"] for p in pairs], seeds)
    print(f"\nearly-time: search-time ratio without/with, median over seeds: wall x{wall:.2f}, "
          f"CPU x{cpu:.2f} (goal >= 1.4); final ticket (density "
          f"{pairs[0]['density']:.4f}) {fmt([p['ticket_without'] for p in pairs])}% without vs "
          f"{fmt([p['ticket_with'] for p in pairs])}% with; with - without "
          f"{diff_ci(ticket_diff)} points")
    return {"pairs": pairs, "median_wall_ratio": wall, "median_cpu_ratio": cpu,
            "ticket_with_minus_without": ticket_diff}


# --------------------------------------------------------------------------- patch
@torch.no_grad()
def spikes_after_embedding(run_dir: Path, config: TrainConfig) -> float:
    """Spikes per test sample in the spiking layers after the patch embedding (the blocks)."""
    from spikesculpt.experiments.train_run import build, load_model_weights
    from spikesculpt.models.utils import spiking_modules
    from spikesculpt.train.trainer import Trainer, iterate_batches

    splits, model, _ = build(config)
    load_model_weights(run_dir / "model.safetensors", model)
    trainer = Trainer(model, splits, config, progress=False)
    model.eval()
    total = [0.0]
    handles = [m.register_forward_hook(lambda mod, i, o: total.__setitem__(0, total[0]
                                                                           + float(o.sum())))
               for n, m in spiking_modules(model) if n.startswith("blocks.")]
    n = 0
    for x, _ in iterate_batches(splits.test, 256, False):
        model(trainer.to_time_major(x))
        n += x.shape[0]
    for h in handles:
        h.remove()
    return total[0] / n


def part_patch(args, work: Path) -> dict:
    rows = []
    for seed in args.seeds:
        for keep in args.keeps:
            kwargs = {**json.loads(args.patch_model_arg), "patch_keep": keep}
            cfg = TrainConfig(dataset=args.dataset, model="spikformer", epochs=args.patch_epochs,
                              timesteps=args.timesteps, seed=seed, device="cpu",
                              model_kwargs=kwargs)
            out = work / f"patch-keep{keep}-seed{seed}"
            m = run_training(cfg, out=str(out), resume=True, progress=False).metrics
            rows.append({"seed": seed, "patch_keep": keep, "tokens_kept": m["tokens_kept"],
                         "test_accuracy": m["test_accuracy"], "val_accuracy": m["val_accuracy"],
                         "train_seconds": m["train_seconds"],
                         "synops_effective": (m["synops"]["effective_acs"]
                                              + m["synops"]["effective_macs"]),
                         "synops_dense": m["synops"]["dense"],
                         "block_spikes_per_sample": spikes_after_embedding(out, cfg)})
            print(f"  seed {seed} keep {keep:<5} tokens {rows[-1]['tokens_kept']:.3f} test "
                  f"{100 * m['test_accuracy']:.2f}% train {m['train_seconds']:.1f} s", flush=True)
    print(f"\npatch tickets, spikformer {args.patch_model_arg} on {args.dataset}, "
          f"{args.patch_epochs} epochs, T={args.timesteps}; mean±std over seeds {args.seeds}")
    print(f"{'keep':>6} {'tokens':>7} {'test acc':>12} {'block spikes/sample':>20} "
          f"{'eff. SynOps/sample':>19} {'train s':>8}")
    table = []
    full = {r["seed"]: r["test_accuracy"] for r in rows if r["patch_keep"] == 1.0}
    for keep in args.keeps:
        rs = [r for r in rows if r["patch_keep"] == keep]
        spikes = statistics.mean(r["block_spikes_per_sample"] for r in rs)
        secs = statistics.mean(r["train_seconds"] for r in rs)
        synops = statistics.mean(r["synops_effective"] for r in rs)
        table.append({"patch_keep": keep, "tokens_kept": rs[0]["tokens_kept"],
                      "synops_effective": synops,
                      "test_mean": mean_std([r["test_accuracy"] for r in rs])[0],
                      "test_std": mean_std([r["test_accuracy"] for r in rs])[1],
                      "block_spikes_per_sample": spikes, "train_seconds": secs,
                      "minus_keep_1": None if keep == 1.0 else paired_difference(
                          {r["seed"]: r["test_accuracy"] for r in rs}, full)})
        print(f"{keep:>6} {rs[0]['tokens_kept']:7.3f} {fmt([r['test_accuracy'] for r in rs]):>12}"
              f" {spikes:20.1f} {synops:19,.0f} {secs:8.1f}  vs keep 1.0: "
              f"{diff_ci(table[-1]['minus_keep_1'])}")
    return {"runs": rows, "table": table}


# --------------------------------------------------------------------------- score
def part_score(args, work: Path) -> dict:
    """Score tickets (edge-popup) and biprop (``binary_weights``) per seed: test accuracy per
    level (level 0 = the trained dense network), paired differences to level 0."""
    table = []
    for binary in (False, True):
        summaries = []
        for seed in args.seeds:
            train = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                                timesteps=args.timesteps, seed=seed, device="cpu",
                                model_kwargs=json.loads(args.model_arg))
            lottery = LotteryConfig(strategy="score", rounds=args.score_rounds,
                                    rate=args.score_rate, binary_weights=binary)
            name = (f"score{'-bin' * binary}-{slug(args.model + args.model_arg)}"
                    f"-r{args.score_rate}-seed{seed}")
            summaries.append(run_lottery(train, lottery, out=str(work / name), resume=True,
                                         progress=False).summary)
        dense = [s["levels"][0]["test_accuracy"] for s in summaries]
        for k in range(args.score_rounds + 1):
            tests = [s["levels"][k]["test_accuracy"] for s in summaries]
            m, sd = mean_std(tests)
            table.append({"strategy": "score-binary" if binary else "score", "level": k,
                          "density": statistics.mean(s["levels"][k]["density"]
                                                     for s in summaries),
                          "tests": tests, "test_mean": m, "test_std": sd,
                          "minus_dense": paired(tests, dense, args.seeds) if k else None})
            print(f"  {table[-1]['strategy']:<12} level {k} density "
                  f"{table[-1]['density']:.4f}: {fmt(tests)}"
                  + (f"  - dense {diff_ci(table[-1]['minus_dense'])}" if k else ""), flush=True)
    return {"table": table}


RESULTS = Path(__file__).resolve().parent / "results"
PARTS = {"imp": part_imp, "early-time": part_early_time, "patch": part_patch,
         "score": part_score}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="imp,early-time,patch",
                   help=f"comma-separated: {', '.join(PARTS)}")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--model", default="mlp")
    p.add_argument("--model-arg", default='{"batch_norm": true}', help="model kwargs as JSON")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--rewind", default="1ep")
    p.add_argument("--prune", default="global")
    p.add_argument("--dense-first", action="store_true", help="keep the first layer dense")
    p.add_argument("--et-timesteps", type=int, default=8)
    p.add_argument("--et-rounds", type=int, default=3)
    p.add_argument("--keeps", default="1.0,0.75,0.5,0.25")
    p.add_argument("--patch-epochs", type=int, default=20)
    p.add_argument("--patch-model-arg", default='{"size": "cpu"}')
    p.add_argument("--score-rounds", type=int, default=3)
    p.add_argument("--score-rate", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="runs/bench-lottery",
                   help="search directories (reused: use a fresh one after a code change)")
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run in a temporary work folder; writes files only with "
                        "--out-dir")
    p.add_argument("--out-dir", default=None, help=f"default {RESULTS}")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.keeps = [float(k) for k in args.keeps.split(",")]
    args.parts = args.parts.split(",")
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(PARTS)}")
    if args.quick:
        args.epochs, args.seeds, args.rounds, args.et_rounds = 3, [0], 2, 1
        args.patch_epochs, args.keeps, args.rewind = 1, [1.0, 0.5], "0it"
        args.score_rounds = 1
    return args


def csv_rows(results: dict) -> list[dict]:
    rows = []
    if "imp" in results:
        for r in results["imp"]["rows"]:
            rows.append({"part": "imp", "level": r["level"], "density": r["density"],
                         **{f"{k}_mean": mean_std(r[k])[0] for k in ("tickets", "reinit",
                                                                      "random")},
                         **{f"{k}_std": mean_std(r[k])[1] for k in ("tickets", "reinit",
                                                                     "random")}})
    if "early-time" in results:
        rows += [{"part": "early-time", **{k: v for k, v in pr.items() if k != "normalised_kl"}}
                 for pr in results["early-time"]["pairs"]]
    if "patch" in results:
        rows += [{"part": "patch", **{k: v for k, v in r.items() if k != "minus_keep_1"}}
                 for r in results["patch"]["table"]]
    if "score" in results:
        rows += [{"part": "score", **{k: v for k, v in r.items()
                                      if k not in ("tests", "minus_dense")}}
                 for r in results["score"]["table"]]
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    meta = {"dataset": args.dataset, "model": args.model, "model_arg": args.model_arg,
            "epochs": args.epochs, "timesteps": args.timesteps, "seeds": args.seeds,
            "rounds": args.rounds, "rate": args.rate, "rewind": args.rewind,
            "prune": args.prune, "dense_first": args.dense_first,
            "et_timesteps": args.et_timesteps, "et_rounds": args.et_rounds,
            "patch_epochs": args.patch_epochs, "patch_model_arg": args.patch_model_arg,
            "keeps": args.keeps, "score_rounds": args.score_rounds,
            "score_rate": args.score_rate, "work": args.work,
            **provenance(torch.get_num_threads())}
    print(f"lottery benchmark: {meta['cpu']}, {meta['torch_threads']} threads, torch "
          f"{meta['torch']}, commit {meta['git_commit'][:7]}", flush=True)
    results = {"meta": meta}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) if args.quick else Path(args.work)
        for part in args.parts:
            print(f"\n== {part}", flush=True)
            results[part] = PARTS[part](args, work)
    meta["wall_seconds"] = time.perf_counter() - start
    if args.quick and args.out_dir is None:
        return 0
    stem = result_stem(args.out_dir or RESULTS, f"lottery_{slug('-'.join(args.parts))}", meta)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    rows = csv_rows(results)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(stem.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    print(f"\nwrote {stem}.json and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
