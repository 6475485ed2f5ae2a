"""Sparse vs dense inference time: linear and convolution layers, and trained models.

Every comparison side by side in one run, implementations interleaved round by round (a busy
shared machine slows all of them alike). The machine line names the CPU's vector extensions,
PyTorch's BLAS / oneDNN and the CPU capability its kernels use. Parts (``--parts``):

1. ``linear``: one linear layer ``y = x Wᵀ + b`` on ``N`` rows of binary spikes (rows = T·B,
   Bernoulli input with ``--activity``, default 0.15) at densities 1, 0.5, 0.2, 0.1, 0.05, 0.02,
   for 784→512, 1024→1024 and 4096→4096. Rows: ``dense`` (``F.linear`` on the masked weight,
   PyTorch's GEMM), ``torch-csr`` (PyTorch's CSR matmul), ``rows`` / ``events`` (spikesculpt's
   two native kernels, inference/cpu_kernel.py) and ``auto`` (what ``SparseLinear`` picks).
2. ``activity``: 1024→1024 at density 0.1 for input activities 0.01 .. 0.3: where the
   event-driven kernel overtakes the vectorised one (the ``EVENT_ACTIVITY`` crossover).
3. ``conv``: 3x3 'same' convolutions 32→64 and 64→128 on 32x32 spike maps (``--conv-rows``
   images, default 32), densities 0.1 and 0.02: dense ``conv2d`` (oneDNN) vs ``SparseConv2d``'s
   ``direct`` and ``events`` kernels (inference/conv_kernel.py) and ``auto``.
4. ``conv-activity``: 64→128 at density 0.1 for input activities 0.005 .. 0.3 (the
   ``sparse_conv.EVENT_ACTIVITY`` crossover).
5. ``model``: spiking MLPs 64-512-512-10 trained with ESL on digits (``--epochs``, T=4) at the
   same densities, and 6. ``conv-model``: digits-dvs conv SNNs (conv 64-128, ESL at 0.1; each
   ``--conv-run``, or two trained for ``--conv-epochs``: 2x2 average pooling, the model's
   default, and max pooling, which keeps the next layer's input binary) at batch 1, 16 and 256
   — both through ``evaluate --sparse`` (calibrated kernels): time per sample of the model as
   trained, of the dense model with the same inference rewrites (BatchNorm folded, native
   pooling), and of the sparse model, accuracies and agreement.

The whole run uses one allocator setting, recorded in the machine line: by default glibc keeps
freed memory for reuse (``core/allocator.py``, as ``evaluate --sparse`` does; fresh tensors are
not faulted in page by page), ``--system-malloc`` leaves the system's default.

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
from machine import blas, provenance, result_stem, vector_extensions  # benchmarks/machine.py

from spikesculpt.core import allocator
from spikesculpt.inference import SparseConv2d, SparseLinear, conv_kernel, cpu_kernel

DENSITIES = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)
SHAPES = ((784, 512, 512), (1024, 1024, 512), (4096, 4096, 256))  # (in, out, rows)


def machine_info(threads: int) -> dict:
    return {**provenance(threads), "vector_extensions": vector_extensions(), **blas(),
            "sparse_kernel": cpu_kernel.status(), "conv_kernel": conv_kernel.status(),
            "allocator": allocator.state(),
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
        for d in (DENSITIES[::3] if args.quick else args.densities):
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


CONV_SHAPES = ((32, 64, 32), (64, 128, 32))  # (in channels, out channels, map size)


def conv_impls(w, x):
    """dense conv2d vs SparseConv2d's kernels on ``x [N, C, H, W]`` (outputs checked first)."""
    layer = {m: SparseConv2d(w, None, (1, 1), mode=m) for m in ("auto", "direct", "events")}
    with torch.no_grad():
        ref = F.conv2d(x, w, padding=1)
        for mod in layer.values():
            torch.testing.assert_close(mod(x), ref, rtol=1e-4, atol=1e-4)
    return {"dense": lambda: F.conv2d(x, w, padding=1), "direct": lambda: layer["direct"](x),
            "events": lambda: layer["events"](x), "auto": lambda: layer["auto"](x)}


def part_conv(args, rows_out):
    """3x3 'same' convolutions on spikes: PyTorch's dense conv2d (oneDNN) vs the direct and
    event-driven sparse kernels, ``--conv-rows`` images (= T x B) of 32x32."""
    g = torch.Generator().manual_seed(2)
    for c, co, h in (CONV_SHAPES[:1] if args.quick else CONV_SHAPES):
        x = (torch.rand(args.conv_rows, c, h, h, generator=g) < args.activity).float()
        for d in (0.1, 0.02):
            w = sparse_weight(co, c * 9, d, g).reshape(co, c, 3, 3)
            res = interleaved(conv_impls(w, x), args.rounds, args.calls)
            for name, (sec, speedup) in res.items():
                rows_out.append({"part": "conv", "shape": f"{c}->{co} {h}x{h}",
                                 "rows": args.conv_rows, "density": d,
                                 "activity": args.activity, "impl": name, "ms": 1e3 * sec,
                                 "speedup": speedup})
            print(f"conv3x3 {c}->{co} {h}x{h} N={args.conv_rows} density {d}: " + "  ".join(
                f"{k} {1e3 * v[0]:.3f} ms ({v[1]:.2f}x)" for k, v in res.items()), flush=True)


def part_conv_activity(args, rows_out):
    """Where the event-driven convolution overtakes the direct one: 64->128, 32x32, density
    0.1, input activities 0.005 .. 0.3 (the ``sparse_conv.EVENT_ACTIVITY`` crossover)."""
    g = torch.Generator().manual_seed(3)
    c, co, h, d = 64, 128, 32, 0.1
    w = sparse_weight(co, c * 9, d, g).reshape(co, c, 3, 3)
    for a in ((0.01, 0.15) if args.quick else (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.15, 0.3)):
        x = (torch.rand(args.conv_rows, c, h, h, generator=g) < a).float()
        res = interleaved(conv_impls(w, x), args.rounds, args.calls)
        for name, (sec, speedup) in res.items():
            rows_out.append({"part": "conv-activity", "shape": f"{c}->{co} {h}x{h}",
                             "rows": args.conv_rows, "density": d, "activity": a, "impl": name,
                             "ms": 1e3 * sec, "speedup": speedup})
        print(f"conv activity {a:<5} (64->128 32x32, density 0.1) " + "  ".join(
            f"{k} {1e3 * v[0]:.3f} ms ({v[1]:.2f}x)" for k, v in res.items()), flush=True)


def _model_rows(name, shape, metrics, s, batch, rows_out):
    """Rows for one ``evaluate --sparse`` result ``s`` (experiments.efficiency.compare_on_split)."""
    for impl, key in (("dense", "dense"), ("dense-folded", "dense_folded"),
                      ("sparse", "sparse")):
        rows_out.append({"part": name, "shape": shape, "rows": batch,
                         "density": metrics["density"], "activity": metrics["firing_rate"],
                         "impl": impl, "ms": s[f"{key}_ms_per_sample"],
                         "speedup": (1.0 if impl == "dense" else s["speedup"] if impl == "sparse"
                                     else s["speedup"] / s["speedup_vs_folded_dense"]),
                         "speedup_vs_folded_dense": s["speedup_vs_folded_dense"],
                         "test_accuracy": (s["test_accuracy_sparse"] if impl == "sparse"
                                           else s["test_accuracy_dense"]),
                         "agreement": s["agreement"],
                         "kernels": {r["name"]: r.get("kernel") for r in s["layers"]
                                     if r["converted"]}})
    print(f"{name} {shape} density {metrics['density']:.3f} firing {metrics['firing_rate']:.3f} "
          f"batch {batch}: per sample dense {s['dense_ms_per_sample']:.3f} ms, dense folded "
          f"{s['dense_folded_ms_per_sample']:.3f} ms, sparse {s['sparse_ms_per_sample']:.3f} ms "
          f"-> {s['speedup']:.2f}x ({s['speedup_vs_folded_dense']:.2f}x vs folded), accuracy "
          f"{s['test_accuracy_sparse']:.4f} (dense {s['test_accuracy_dense']:.4f}), agree "
          f"{s['agreement']:.4f}", flush=True)


def part_model(args, rows_out):
    """Spiking MLPs 64-512-512-10 trained on digits with ESL (dense at density 1): the whole
    model, neurons included, with ``evaluate --sparse`` (calibrated), batch 256."""
    from spikesculpt.config import TrainConfig
    from spikesculpt.experiments.train_run import evaluate_run, run_training

    densities = (0.1,) if args.quick else args.densities
    with tempfile.TemporaryDirectory() as tmp:
        for d in densities:
            cfg = TrainConfig(method="dense" if d == 1.0 else "esl", timesteps=4,
                              epochs=1 if args.quick else args.epochs,
                              model_kwargs={"hidden": [512, 512]})
            cfg.sparse.density = d if d < 1.0 else 0.1
            result = run_training(cfg, out=str(Path(tmp) / f"d{d}"), progress=False)
            m = evaluate_run(result.run_dir.path, sparse=True, batch_size=256,
                             keep_memory=not args.system_malloc)
            _model_rows("model", "mlp 64-512-512-10 T=4", m, m["sparse_inference"], 256,
                        rows_out)


def part_conv_model(args, rows_out):
    """Conv SNNs on digits-dvs (2x34x34 events, conv 64-128, T = 4, ESL at density 0.1): each
    ``--conv-run RUN_DIR``, or two trained here for ``--conv-epochs`` (average and max
    pooling); whole model, neurons included, with ``evaluate --sparse`` (calibrated) at batch
    sizes 1, 16 and 256."""
    from spikesculpt.config import TrainConfig
    from spikesculpt.experiments.train_run import evaluate_run, load_run_config, run_training

    with tempfile.TemporaryDirectory() as tmp:
        run_dirs = list(args.conv_run or [])
        if not run_dirs:
            for pool in ("avg", "max"):
                cfg = TrainConfig(method="esl", dataset="digits-dvs", model="conv", timesteps=4,
                                  epochs=1 if args.quick else args.conv_epochs,
                                  model_kwargs={"channels": [64, 128], "pool": pool})
                cfg.sparse.density = 0.1
                run_dirs.append(run_training(cfg, out=str(Path(tmp) / pool),
                                             progress=False).run_dir.path)
        for run_dir in run_dirs:
            pool = load_run_config(run_dir)[1].model_kwargs.get("pool", "avg")
            for batch in ((16,) if args.quick else (1, 16, 256)):
                m = evaluate_run(run_dir, sparse=True, batch_size=batch,
                                 keep_memory=not args.system_malloc)
                _model_rows("conv-model", f"digits-dvs conv 64-128 {pool}-pool T=4", m,
                            m["sparse_inference"], batch, rows_out)


PARTS = {"linear": part_linear, "activity": part_activity, "conv": part_conv,
         "conv-activity": part_conv_activity, "model": part_model, "conv-model": part_conv_model}


RESULTS = Path(__file__).resolve().parent / "results"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--activity", type=float, default=0.15, help="input spike probability")
    p.add_argument("--densities", type=lambda t: tuple(float(v) for v in t.split(",")),
                   default=DENSITIES, metavar="LIST",
                   help=f"weight densities of the linear and model parts (default "
                        f"{','.join(map(str, DENSITIES))})")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--calls", type=int, default=5, help="calls per round (best kept)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs of the model part")
    p.add_argument("--conv-rows", type=int, default=32,
                   help="images per call in the conv parts (T x B)")
    p.add_argument("--conv-run", action="append", default=None, metavar="RUN_DIR",
                   help="conv-model part: a finished digits-dvs conv run to time (repeatable; "
                        "else two are trained, average and max pooling)")
    p.add_argument("--conv-epochs", type=int, default=8,
                   help="training epochs of the conv-model part")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: few sizes; writes files only with --out-dir")
    p.add_argument("--out-dir", default=None, help=f"default {RESULTS}")
    p.add_argument("--system-malloc", action="store_true",
                   help="leave the system's malloc as it is (default: glibc keeps freed memory "
                        "for reuse, as evaluate --sparse does)")
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
    if not args.system_malloc:
        allocator.keep_freed_memory()
    cpu_kernel.library()
    conv_kernel.library()
    info = machine_info(args.threads)
    print(json.dumps(info), flush=True)
    print(f"CPU {info['cpu']}: vector extensions {' '.join(info['vector_extensions']) or '?'}; "
          f"BLAS {info['blas']}, oneDNN {info['onednn']}, PyTorch kernels "
          f"{info['cpu_capability']}; {info['allocator']}", flush=True)
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
