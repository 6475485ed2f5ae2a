"""Sparse vs dense inference time: linear layers at densities 1 .. 0.02, and trained models.

Three parts, every comparison side by side in one run, implementations interleaved round by
round (a busy shared machine slows all of them alike):

1. ``linear``: one linear layer ``y = x Wᵀ + b`` on ``N`` rows of binary spikes (rows = T·B,
   Bernoulli input with ``--activity``, default 0.15) at densities 1, 0.5, 0.2, 0.1, 0.05, 0.02,
   for 784→512, 1024→1024 and 4096→4096. Rows: ``dense`` (``F.linear`` on the masked weight,
   PyTorch's GEMM), ``torch-csr`` (PyTorch's CSR matmul), ``rows`` / ``events`` (spikesculpt's
   two native kernels, export/cpu_kernel.py) and ``auto`` (what ``SparseLinear`` picks).
2. ``activity``: 1024→1024 at density 0.1 for input activities 0.01 .. 0.3: where the
   event-driven kernel overtakes the vectorised one (the ``EVENT_ACTIVITY`` crossover).
3. ``conv``: a 3x3 convolution on spikes, dense ``conv2d`` vs im2col (``unfold``) + the sparse
   kernel — whether converting convolutions pays.
4. ``model``: spiking MLPs 64-512-512-10 trained with ESL on digits (``--epochs``, T=4) at the
   same densities: the whole model's time per test batch (256 samples), dense masked model vs
   ``to_sparse_inference``, and both test accuracies.

Per round each implementation is called ``--calls`` times and its best time is kept (robust to
preemption); reported are the median over ``--rounds`` rounds of that time and of the per-round
ratio dense / implementation (``speedup``). Results go to ``benchmarks/results/`` as JSON + CSV
tagged with the machine (CPU, threads, torch, date, git commit, command).

    python benchmarks/bench_sparse_inference.py                # everything, 2 threads
    python benchmarks/bench_sparse_inference.py --threads 1 --parts linear,activity
    python benchmarks/bench_sparse_inference.py --quick        # smoke test, no files
                                                               # (unless --out-dir)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import provenance, result_stem  # benchmarks/machine.py

from spikesculpt.inference import SparseLinear, cpu_kernel, to_sparse_inference

DENSITIES = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)
SHAPES = ((784, 512, 512), (1024, 1024, 512), (4096, 4096, 256))  # (in, out, rows)


def machine_info(threads: int) -> dict:
    return {**provenance(threads), "sparse_kernel": cpu_kernel.status(),
            "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None}


def best_time(fn, calls: int) -> float:
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def interleaved(impls: dict, rounds: int, calls: int) -> dict:
    """{name: (median seconds, median speedup vs impls' first entry)} over interleaved rounds."""
    names = list(impls)
    for fn in impls.values():  # warm-up
        fn()
    times = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            times[n].append(best_time(impls[n], calls))
    base = times[names[0]]
    return {n: (statistics.median(times[n]),
                statistics.median(b / t for b, t in zip(base, times[n]))) for n in names}


def sparse_weight(out_f, in_f, density, g):
    return torch.randn(out_f, in_f, generator=g) * (torch.rand(out_f, in_f, generator=g) < density)


def linear_impls(w, b, x):
    layer = {m: SparseLinear(w, b, mode=m) for m in ("auto", "rows", "events", "torch")}
    with torch.no_grad():
        ref = F.linear(x, w, b)
        for m, mod in layer.items():
            torch.testing.assert_close(mod(x), ref, rtol=1e-4, atol=1e-4)
    return {"dense": lambda: F.linear(x, w, b), "torch-csr": lambda: layer["torch"](x),
            "rows": lambda: layer["rows"](x), "events": lambda: layer["events"](x),
            "auto": lambda: layer["auto"](x)}


def part_linear(args, rows_out):
    g = torch.Generator().manual_seed(0)
    shapes = SHAPES[:1] if args.quick else SHAPES
    for in_f, out_f, n in shapes:
        x = (torch.rand(n, in_f, generator=g) < args.activity).float()
        for d in (DENSITIES[::3] if args.quick else DENSITIES):
            w, b = sparse_weight(out_f, in_f, d, g), torch.randn(out_f, generator=g)
            res = interleaved(linear_impls(w, b, x), args.rounds, args.calls)
            for name, (sec, speedup) in res.items():
                rows_out.append({"part": "linear", "shape": f"{in_f}x{out_f}", "rows": n,
                                 "density": d, "activity": args.activity, "impl": name,
                                 "ms": 1e3 * sec, "speedup": speedup})
            print(f"linear {in_f}->{out_f} N={n} density {d:<5} " + "  ".join(
                f"{k} {1e3 * v[0]:.3f} ms ({v[1]:.2f}x)" for k, v in res.items()), flush=True)


def part_activity(args, rows_out):
    g = torch.Generator().manual_seed(1)
    in_f, out_f, n, d = 1024, 1024, 512, 0.1
    w, b = sparse_weight(out_f, in_f, d, g), torch.randn(out_f, generator=g)
    for a in ((0.01, 0.15) if args.quick else (0.01, 0.02, 0.03, 0.05, 0.08, 0.15, 0.3)):
        x = (torch.rand(n, in_f, generator=g) < a).float()
        impls = linear_impls(w, b, x)
        res = interleaved({k: impls[k] for k in ("dense", "rows", "events", "auto")},
                          args.rounds, args.calls)
        for name, (sec, speedup) in res.items():
            rows_out.append({"part": "activity", "shape": f"{in_f}x{out_f}", "rows": n,
                             "density": d, "activity": a, "impl": name, "ms": 1e3 * sec,
                             "speedup": speedup})
        print(f"activity {a:<5} (1024->1024, density 0.1) " + "  ".join(
            f"{k} {1e3 * v[0]:.3f} ms ({v[1]:.2f}x)" for k, v in res.items()), flush=True)


def part_conv(args, rows_out):
    g = torch.Generator().manual_seed(2)
    for c, co, h, n in ((16, 32, 8, 1024), (64, 64, 16, 128), (128, 128, 8, 256)):
        x = (torch.rand(n, c, h, h, generator=g) < args.activity).float()
        for d in (0.1, 0.02):
            w = sparse_weight(co, c * 9, d, g).reshape(co, c, 3, 3)
            layer = SparseLinear(w.reshape(co, -1), None, mode="rows")

            def unfolded(x=x, layer=layer, c=c, co=co, h=h, n=n):
                u = F.unfold(x, 3, padding=1)                       # [n, c*9, h*h]
                y = layer(u.transpose(1, 2).reshape(-1, c * 9))      # [n*h*h, co]
                return y.reshape(n, h * h, co).transpose(1, 2).reshape(n, co, h, h)

            torch.testing.assert_close(unfolded(), F.conv2d(x, w, padding=1), rtol=1e-4,
                                       atol=1e-4)
            res = interleaved({"dense": lambda: F.conv2d(x, w, padding=1),
                               "unfold+rows": unfolded}, args.rounds, args.calls)
            for name, (sec, speedup) in res.items():
                rows_out.append({"part": "conv", "shape": f"{c}->{co} {h}x{h}", "rows": n,
                                 "density": d, "activity": args.activity, "impl": name,
                                 "ms": 1e3 * sec, "speedup": speedup})
            print(f"conv3x3 {c}->{co} {h}x{h} N={n} density {d}: " + "  ".join(
                f"{k} {1e3 * v[0]:.3f} ms ({v[1]:.2f}x)" for k, v in res.items()), flush=True)
        if args.quick:
            break


def part_model(args, rows_out):
    from spikesculpt.config import TrainConfig
    from spikesculpt.experiments.train_run import build, load_model_weights, run_training

    densities = (0.1,) if args.quick else DENSITIES
    with tempfile.TemporaryDirectory() as tmp:
        for d in densities:
            cfg = TrainConfig(method="dense" if d == 1.0 else "esl", timesteps=4,
                              epochs=1 if args.quick else args.epochs,
                              model_kwargs={"hidden": [512, 512]})
            cfg.sparse.density = d if d < 1.0 else 0.1
            result = run_training(cfg, out=str(Path(tmp) / f"d{d}"), progress=False)
            splits, model, _ = build(cfg)
            load_model_weights(result.run_dir.model_path, model)
            model.eval()
            fast, report = to_sparse_inference(model)
            x, y = splits.test.tensors
            xt = x[:256].unsqueeze(0).expand(4, 256, *x.shape[1:])
            with torch.no_grad():
                full = x.unsqueeze(0).expand(4, *x.shape)
                acc_d = float((model(full).mean(0).argmax(-1) == y).float().mean())
                acc_s = float((fast(full).mean(0).argmax(-1) == y).float().mean())
                res = interleaved({"dense": lambda: model(xt), "sparse": lambda: fast(xt)},
                                  args.rounds, args.calls)
            converted = sum(r["converted"] for r in report)
            for name, (sec, speedup) in res.items():
                rows_out.append({"part": "model", "shape": "mlp 64-512-512-10 T=4", "rows": 1024,
                                 "density": result.metrics["density"], "activity":
                                 result.metrics["firing_rate"], "impl": name, "ms": 1e3 * sec,
                                 "speedup": speedup, "test_accuracy": acc_d if name == "dense"
                                 else acc_s, "converted_layers": converted})
            print(f"model mlp-512-512 density {result.metrics['density']:.3f} firing "
                  f"{result.metrics['firing_rate']:.3f}: dense {1e3 * res['dense'][0]:.3f} ms "
                  f"(acc {acc_d:.4f}), sparse {1e3 * res['sparse'][0]:.3f} ms (acc {acc_s:.4f}, "
                  f"{converted}/3 layers) -> {res['sparse'][1]:.2f}x", flush=True)


PARTS = {"linear": part_linear, "activity": part_activity, "conv": part_conv,
         "model": part_model}


RESULTS = Path(__file__).resolve().parent / "results"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--activity", type=float, default=0.15, help="input spike probability")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--calls", type=int, default=5, help="calls per round (best kept)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs of the model part")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: few sizes; writes files only with --out-dir")
    p.add_argument("--out-dir", default=None, help=f"default {RESULTS}")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.parts = args.parts.split(",")
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(PARTS)}")
    if args.quick:
        args.rounds, args.calls = 2, 1
    torch.set_num_threads(args.threads)
    cpu_kernel.library()
    info = machine_info(args.threads)
    print(json.dumps(info), flush=True)
    rows: list[dict] = []
    for part in args.parts:
        PARTS[part](args, rows)
    if args.quick and args.out_dir is None:
        return 0
    stem = result_stem(args.out_dir or RESULTS, "sparse_inference", info)
    meta = {"machine": info, "args": vars(args), "rows": rows}
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(stem.with_suffix(".csv"), "w", newline="") as fh:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {stem}.json/.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
