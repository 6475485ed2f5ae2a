"""Genetic encoding benchmarks: compression vs accuracy, evolution vs none, batched evaluation.

Three parts (``--part``), all on ``digits`` (sklearn 8x8 digits) with the MLP 64-256-256-10,
T = 4, Adam lr 1e-3, batch 64, cosine schedule, the model picked on validation (test accuracy of
the best-validation epoch):

``compression``  for gene dimensions G: test accuracy and parameter count of
    - ``dense``: the plain MLP (30 epochs);
    - ``genetic``: gene-encoded, random initial rule (no evolution), 30 epochs;
    - ``evolved``: gene-encoded, initial rule evolved (CMA-ES, population 8, 5 generations,
      1-epoch short training) then 30 epochs;
    - ``lowrank``: the ``lowrank`` method (every layer a plain low-rank product W = α·U Vᵀ,
      U [N_out, r], V [N_in, r], no shared matrix; same α rule and initial scale as the genes;
      per-layer ranks matching the genetic parameter count at the same g); 30 epochs.
    over ``--seeds`` seeds.
``evolution``  at G = ``--evo-gene-dim``, equal total training compute (candidate epochs +
    final epochs): evolution with both regularisers, without the spatial one, without the
    temporal one, without both; random search (one generation of P·G candidates, the same number
    of short trainings); the random rule trained for 30 epochs and for the whole budget
    (30 + P·G epochs, cosine over all of them).
``speed``  scoring one generation (1-epoch short training + validation) of P candidates:
    one at a time (``off``) vs the stacked population (``stack``) vs ``torch.func.vmap``,
    interleaved rounds in rotating order; reported: median seconds and the median per-round
    ratio (one-at-a-time time / batched time).
``init-std``  how the default ``init_std`` (GeneticConfig) is chosen: the random rule at
    G = ``--init-std-gene-dim`` for each s in ``--init-stds``, chosen on VALIDATION accuracy
    (mean over seeds); the validation accuracy of every candidate and the test accuracy of the
    chosen one only.

Comparisons are paired over seeds (same seed = same data split and initial stream): mean
difference and 95% CI (compression: genetic − dense, evolved − genetic, low-rank − genetic;
evolution: every variant − the random rule trained for the same total epochs).

    python benchmarks/bench_genetic.py --part all          # writes benchmarks/results/
    python benchmarks/bench_genetic.py --quick             # smoke test, writes nothing
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from machine import provenance, result_stem  # benchmarks/machine.py
from summary import (
    by_seed,
    choose_default,
    choose_on_validation,
    diff_ci,
    mean_std,
    paired_difference,
    pct,
)

from spikesculpt.config import TrainConfig
from spikesculpt.data import load_dataset
from spikesculpt.experiments.evolution.evolution import run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.evolution.population import PopulationScorer
from spikesculpt.experiments.train_run import build
from spikesculpt.methods.genetic import GeneDimWarning
from spikesculpt.methods.genetic.genome import Genome
from spikesculpt.models.utils import count_parameters
from spikesculpt.train.trainer import Trainer


# ------------------------------------------------------------------------------ results
def machine_info(threads: int) -> dict:
    versions = {}
    for mod in ("numpy", "cma", "pymoo"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = None
    return {**provenance(threads), "packages": versions}


def write_results(out_dir, part: str, machine: dict, rows: list[dict], extra: dict) -> Path:
    base = result_stem(out_dir, f"genetic_{part}", machine)
    base.with_suffix(".json").write_text(json.dumps({"machine": machine, **extra, "rows": rows},
                                                    indent=1) + "\n")
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols and not isinstance(r[k], (dict, list))]
    with open(base.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return base.with_suffix(".json")


# ------------------------------------------------------------------------------ configs
def base_config(seed: int, epochs: int, method: str = "dense", gene_dim: int = 16,
                init_std: float | None = None) -> TrainConfig:
    cfg = TrainConfig(dataset="digits", model="mlp", method=method, epochs=epochs, timesteps=4,
                      seed=seed, device="cpu")
    cfg.genetic.gene_dim = gene_dim
    if init_std is not None:
        cfg.genetic.init_std = init_std
    return cfg


def fit(cfg: TrainConfig, splits, model=None) -> dict:
    """Train ``cfg`` (or ``model`` with cfg's loop); test accuracy of the best-val epoch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneDimWarning)
        if model is None:
            cfg.validate()
            _, model, callbacks = build(cfg)
        else:
            callbacks = []
    trainer = Trainer(model, splits, cfg, callbacks, progress=False)
    m = trainer.fit()
    return {"test_accuracy": m["test_accuracy"], "val_accuracy": m["val_accuracy"],
            "params": count_parameters(model), "train_seconds": m["train_seconds"],
            "firing_rate": m["firing_rate"],
            **({"ranks": m["lowrank_ranks"]} if "lowrank_ranks" in m else {})}


# ------------------------------------------------------------------------------ parts
def part_compression(args, splits_by_seed) -> list[dict]:
    rows = []
    for seed in range(args.seeds):
        splits = splits_by_seed(seed)
        r = fit(base_config(seed, args.epochs), splits)
        rows.append({"variant": "dense", "gene_dim": None, "seed": seed, **r})
        print(f"seed {seed} dense: {100 * r['test_accuracy']:.2f}% ({r['params']} params)",
              flush=True)
        for g in args.gene_dims:
            cfg = base_config(seed, args.epochs, "genetic", g)
            r = fit(cfg, splits)
            rows.append({"variant": "genetic", "gene_dim": g, "seed": seed, **r})
            lowrank = base_config(seed, args.epochs, "lowrank", g)  # the `lowrank` method
            rl = fit(lowrank, splits)
            rank = "/".join(str(r) for r in rl["ranks"].values())
            rows.append({"variant": "lowrank", "gene_dim": g, "rank": rank, "seed": seed, **rl})
            with tempfile.TemporaryDirectory() as tmp:
                evo = EvolutionConfig(population=args.population, generations=args.generations,
                                      eval_epochs=1)
                res = run_evolution(cfg, evo, out=tmp, progress=False)
                fin = res.summary["final"]
                rows.append({"variant": "evolved", "gene_dim": g, "seed": seed,
                             "test_accuracy": fin["test_accuracy"],
                             "val_accuracy": fin["val_accuracy"], "params": fin["params_total"],
                             "train_seconds": fin["train_seconds"],
                             "firing_rate": fin["firing_rate"]})
            print(f"seed {seed} g={g}: genetic {100 * r['test_accuracy']:.2f}% | lowrank r={rank} "
                  f"{100 * rl['test_accuracy']:.2f}% ({rl['params']}) | evolved "
                  f"{100 * fin['test_accuracy']:.2f}% | {r['params']} params", flush=True)
    return rows


def part_evolution(args, splits_by_seed) -> list[dict]:
    g, P, G = args.evo_gene_dim, args.population, args.generations
    budget = P * G                       # candidate epochs (1-epoch short trainings)
    rows = []
    variants = [("evolved", dict()), ("no-spatial", dict(spatial=False)),
                ("no-temporal", dict(temporal=False)),
                ("no-regularisers", dict(spatial=False, temporal=False)),
                ("random-search", dict(population=P * G, generations=1))]
    for seed in range(args.seeds):
        splits = splits_by_seed(seed)
        cfg = base_config(seed, args.epochs, "genetic", g)
        for name, opts in variants:
            evo = EvolutionConfig(population=P, generations=G, eval_epochs=1)
            for k, v in opts.items():
                setattr(evo, k, v)
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                res = run_evolution(cfg, evo, out=tmp, progress=False)
            s = res.summary
            rows.append({"variant": name, "gene_dim": g, "seed": seed,
                         "test_accuracy": s["final"]["test_accuracy"],
                         "val_accuracy": s["final"]["val_accuracy"],
                         "best_short_val_accuracy": s["best"]["accuracy"],
                         "candidate_epochs": s["compute"]["candidate_epochs"],
                         "final_epochs": s["compute"]["final_epochs"],
                         "total_epochs": s["compute"]["candidate_epochs"] + args.epochs,
                         "seconds": time.perf_counter() - start})
            print(f"seed {seed} {name}: {100 * rows[-1]['test_accuracy']:.2f}% "
                  f"({rows[-1]['total_epochs']} epochs)", flush=True)
        for name, epochs in (("random-rule", args.epochs),
                             ("random-rule-equal-compute", args.epochs + budget)):
            r = fit(base_config(seed, epochs, "genetic", g), splits)
            rows.append({"variant": name, "gene_dim": g, "seed": seed,
                         "test_accuracy": r["test_accuracy"], "val_accuracy": r["val_accuracy"],
                         "candidate_epochs": 0, "final_epochs": epochs, "total_epochs": epochs,
                         "seconds": r["train_seconds"]})
            print(f"seed {seed} {name}: {100 * r['test_accuracy']:.2f}% ({epochs} epochs)",
                  flush=True)
    return rows


def part_speed(args, splits_by_seed) -> tuple[list[dict], dict]:
    splits = splits_by_seed(0)
    rows = []
    check = {}
    for P in args.speed_populations:
        cfg = base_config(0, 1, "genetic", args.speed_gene_dim)
        scorer = PopulationScorer(cfg, eval_epochs=1, splits=splits)
        names = scorer.layer_names(args.speed_gene_dim)
        genomes = [Genome.random_rule(args.speed_gene_dim, names, generator=torch.Generator()
                                      .manual_seed(i)) for i in range(P)]
        modes = {"off": lambda: [scorer.score_one(g) for g in genomes],
                 "stack": lambda: scorer.score_batched(genomes, "stack"),
                 "vmap": lambda: scorer.score_batched(genomes, "vmap")}
        for fn in modes.values():          # warm-up (native kernel, allocator)
            fn() if P <= 4 else None
        times = {m: [] for m in modes}
        results = {}
        order = list(modes)
        for rnd in range(args.repeats):
            for m in order[rnd % len(order):] + order[:rnd % len(order)]:
                start = time.perf_counter()
                results[m] = modes[m]()
                times[m].append(time.perf_counter() - start)
        same = [a["accuracy"] for a in results["off"]] == [a["accuracy"] for a in results["stack"]]
        check[f"P{P}_stack_same_accuracies"] = same
        check[f"P{P}_vmap_same_accuracies"] = \
            [a["accuracy"] for a in results["off"]] == [a["accuracy"] for a in results["vmap"]]
        for m in modes:
            ratios = [o / t for o, t in zip(times["off"], times[m])]
            rows.append({"population": P, "mode": m, "median_seconds": statistics.median(times[m]),
                         "min_seconds": min(times[m]),
                         "speedup_vs_off": statistics.median(ratios),
                         "seconds_per_candidate": statistics.median(times[m]) / P})
            print(f"P={P} {m}: {rows[-1]['median_seconds']:.2f} s, "
                  f"x{rows[-1]['speedup_vs_off']:.2f} vs one at a time", flush=True)
    return rows, check


def part_init_std(args, splits_by_seed) -> tuple[list[dict], dict]:
    """The random rule at G = ``--init-std-gene-dim`` for every s in ``--init-stds``, chosen on
    validation; rows of the other candidates carry no test accuracy."""
    g = args.init_std_gene_dim
    rows = []
    for seed in range(args.seeds):
        splits = splits_by_seed(seed)
        for s in args.init_stds:
            r = fit(base_config(seed, args.epochs, "genetic", g, init_std=s), splits)
            rows.append({"variant": "genetic", "gene_dim": g, "init_std": s, "seed": seed, **r})
            print(f"seed {seed} init_std={s}: val {100 * r['val_accuracy']:.2f}%", flush=True)
    return choose_init_std(rows)


def choose_init_std(rows: list[dict]) -> tuple[list[dict], dict]:
    """Best mean validation accuracy over seeds; the test accuracy of that candidate only (the
    others' are dropped from the rows). Current default (GeneticConfig) listed first: kept on a
    tie. Each candidate also gets its paired validation difference to the default."""
    default = TrainConfig().genetic.init_std
    stds = sorted({r["init_std"] for r in rows}, key=lambda s: s != default)
    val = {s: by_seed((r for r in rows if r["init_std"] == s), "val_accuracy") for s in stds}
    candidates = []
    for s in stds:
        m, sd = mean_std(val[s].values())
        candidates.append({"init_std": s, "n": len(val[s]), "val_mean": m, "val_std": sd,
                           "val_minus_default": paired_difference(val[s], val[default])
                           if default in val else None})
    chosen_index, top_index = choose_default(candidates, 0) if default in val \
        else (choose_on_validation(candidates),) * 2
    best, top = candidates[chosen_index], candidates[top_index]
    test = mean_std(r["test_accuracy"] for r in rows if r["init_std"] == best["init_std"])
    chosen = {**best, "test_mean": test[0], "test_std": test[1],
              "current_default": default, "is_current_default": best["init_std"] == default,
              "best_mean": {"init_std": top["init_std"],
                            "val_minus_default": top["val_minus_default"]}}
    rows = [r if r["init_std"] == best["init_std"]
            else {k: v for k, v in r.items() if k != "test_accuracy"} for r in rows]
    print("init_std: VALIDATION accuracy (%) of every candidate, mean ± std over seeds; paired "
          "difference to the current default")
    for c in candidates:
        mark = "  <- chosen" if c is best else ("  <- best mean, within noise" if c is top else "")
        print(f"  s={c['init_std']:<8} {pct(c['val_mean'], c['val_std'])}  "
              f"{diff_ci(c['val_minus_default'])}{mark}")
    print("rule: the default stays unless the validation-best candidate beats it with a paired "
          "95% CI above 0")
    print(f"chosen on validation: init_std {best['init_std']}; its test accuracy "
          f"{pct(test[0], test[1])}; current default {default}: "
          f"{'the same' if chosen['is_current_default'] else 'different'}")
    return rows, {"candidates": candidates, "chosen": chosen}


def compression_pairs(rows: list[dict]) -> list[dict]:
    """Paired test-accuracy differences per gene dimension: genetic − dense, evolved − genetic,
    low-rank − genetic."""
    def tests(variant, g=None):
        return by_seed(r for r in rows if r["variant"] == variant and r["gene_dim"] == g)

    out = []
    for g in sorted({r["gene_dim"] for r in rows if r["gene_dim"] is not None}):
        for a, b, gb in (("genetic", "dense", None), ("evolved", "genetic", g),
                         ("lowrank", "genetic", g)):
            d = paired_difference(tests(a, g), tests(b, gb))
            if d is not None:
                out.append({"gene_dim": g, "variant": a, "baseline": b, **d})
    return out


def evolution_pairs(rows: list[dict]) -> list[dict]:
    """Every variant − the random rule trained for the same total epochs, paired over seeds."""
    base = by_seed(r for r in rows if r["variant"] == "random-rule-equal-compute")
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        if variant != "random-rule-equal-compute":
            d = paired_difference(by_seed(r for r in rows if r["variant"] == variant), base)
            if d is not None:
                out.append({"variant": variant, "baseline": "random-rule-equal-compute", **d})
    return out


def summarise(rows: list[dict], keys=("variant", "gene_dim")) -> list[dict]:
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        test = mean_std(r["test_accuracy"] for r in rs)
        val = mean_std(r["val_accuracy"] for r in rs)
        out.append({**dict(zip(keys, key)), "n": len(rs),
                    "test_accuracy_mean": test[0], "test_accuracy_std": test[1],
                    "val_accuracy_mean": val[0], "val_accuracy_std": val[1],
                    **({"params": rs[0]["params"]} if "params" in rs[0] else {}),
                    **({"rank": rs[0]["rank"]} if "rank" in rs[0] else {}),
                    **({"total_epochs": rs[0]["total_epochs"]} if "total_epochs" in rs[0]
                       else {})})
    return out


def print_pairs(pairs: list[dict]) -> None:
    print("paired differences (points), mean [95% CI] over seeds:")
    for d in pairs:
        where = f"g={d['gene_dim']} " if "gene_dim" in d else ""
        print(f"  {where}{d['variant']} - {d['baseline']}: {diff_ci(d)}")


RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("compression", "evolution", "speed", "init-std")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=(*PARTS, "all"), default="all")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 .. N-1)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--gene-dims", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--evo-gene-dim", type=int, default=8)
    p.add_argument("--speed-populations", type=int, nargs="+", default=[4, 16])
    p.add_argument("--speed-gene-dim", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--init-stds", type=float, nargs="+", default=[1.0, 0.1, 0.05, 0.02, 0.01])
    p.add_argument("--init-std-gene-dim", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true",
                   help="tiny settings; writes files only with --out-dir")
    p.add_argument("--out-dir", default=None, help=f"default {RESULTS}")
    return p


def run_part(part: str, args, splits_by_seed) -> tuple[list[dict], dict]:
    """(rows, extra) of one part; extra holds its summary / paired differences / checks."""
    if part == "compression":
        rows = part_compression(args, splits_by_seed)
        return rows, {"summary": summarise(rows), "paired": compression_pairs(rows)}
    if part == "evolution":
        rows = part_evolution(args, splits_by_seed)
        return rows, {"summary": summarise(rows), "paired": evolution_pairs(rows)}
    if part == "init-std":
        return part_init_std(args, splits_by_seed)
    rows, check = part_speed(args, splits_by_seed)
    return rows, {"check": check}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.gene_dims = 1, 2, [4]
        args.population, args.generations, args.speed_populations, args.repeats = 2, 1, [2], 1
        args.init_stds = [0.1, 0.02]
    torch.set_num_threads(args.threads)
    machine = machine_info(args.threads)
    cache = {}

    def splits_by_seed(seed):
        if seed not in cache:
            cache[seed] = load_dataset("digits", seed=seed, val_fraction=0.1, timesteps=4)
        return cache[seed]

    parts = PARTS if args.part == "all" else [args.part]
    settings = {k: v for k, v in vars(args).items() if k not in ("part",)}
    for part in parts:
        print(f"== {part}", flush=True)
        start = time.perf_counter()
        rows, extra = run_part(part, args, splits_by_seed)
        extra["settings"] = settings
        extra["wall_seconds"] = time.perf_counter() - start
        for s in extra.get("summary", []):
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()})
        if extra.get("paired"):
            print_pairs(extra["paired"])
        if not args.quick or args.out_dir is not None:
            print("wrote", write_results(args.out_dir or RESULTS, part, machine, rows, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
