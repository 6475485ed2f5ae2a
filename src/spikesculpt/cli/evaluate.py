"""``spikesculpt evaluate RUN_DIR``: reload a run's best model and recompute its metrics.

With ``--sparse`` the model is also converted to the sparse inference model
(``spikesculpt.inference.to_sparse_inference``: linear and stride-1 convolution layers on their
nonzero weights, BatchNorm folded) and both are run on the test split: accuracy of each,
agreement of their predictions, and the time per sample of each (best of 5 calls per batch,
interleaved) and their ratio — also against the dense model with the same inference rewrites
(BatchNorm folded, native 2x2 pooling), which isolates what sparsity buys. By default each
layer's kernel is chosen by timing them on the first test batch (``--no-calibrate``: by input
activity, layers of density <= 0.5 only). Before timing, glibc's malloc is told to keep freed
memory for reuse (``spikesculpt.core.allocator``: fresh tensors are not faulted in page by page;
the same for every model timed; ``--no-keep-memory``: the system's default).
"""

from __future__ import annotations

import argparse
import json

from spikesculpt.cli.train import size_text
from spikesculpt.core.options import positive_int
from spikesculpt.experiments.train_run import evaluate_run


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="recompute the metrics of a finished run",
                       description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--json", action="store_true", help="print every metric as JSON")
    p.add_argument("--sparse", action="store_true",
                   help="also run the sparse inference model: accuracy and time per sample, "
                        "dense vs sparse (CPU)")
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                   help="--sparse: choose each layer's kernel (or dense) by timing them on the "
                        "first test batch (default); --no-calibrate: by input activity")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                   help="--sparse: samples per timed batch (default: the run's evaluation "
                        "batch, at least 256)")
    p.add_argument("--keep-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="--sparse: let glibc's malloc keep freed memory for reuse while timing "
                        "(no page faults on fresh tensors, for every model alike; default); "
                        "--no-keep-memory: the system's default malloc")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    m = evaluate_run(args.run_dir, device=args.device, sparse=args.sparse,
                     calibrate=args.calibrate, batch_size=args.batch_size,
                     keep_memory=args.keep_memory)
    if args.json:
        print(json.dumps(m, indent=2))
    else:
        print(f"{m['run_dir']}: test accuracy {100 * m['test_accuracy']:.2f}% | "
              f"val {100 * m['val_accuracy']:.2f}% | firing rate {m['firing_rate']:.3f} | "
              f"{size_text(m, counts=True)}")
        if "synops" in m:
            ops = m["synops"]
            print(f"per sample: {ops['effective_acs']:,.0f} ACs + {ops['effective_macs']:,.0f} "
                  f"MACs effective of {ops['dense']:,.0f} dense SynOps | energy "
                  f"{m['energy_pj'] / 1e3:,.1f} nJ ({m['energy_preset']}, 45 nm) | activation "
                  f"sparsity {m['activation_sparsity']:.3f} | footprint "
                  f"{m['footprint_bytes']['dense']:,} B dense, "
                  f"{m['footprint_bytes']['sparse']:,} B sparse")
        if "sparse_inference" in m:
            print(sparse_text(m["sparse_inference"]))
    return 0


def sparse_text(s: dict) -> str:
    """Two lines on the sparse inference model: layers and kernels, then accuracy and time."""
    layers = s["layers"]
    done = [r for r in layers if r["converted"]]
    kinds = ", ".join(f"{sum(r['kind'] == k for r in done)} {k}" for k in ("linear", "conv2d",
                                                                             "conv1d")
                      if any(r["kind"] == k for r in done))
    kernels = ", ".join(f"{r['name'].rsplit('.', 1)[0]}={r['kernel']}" for r in done
                        if "kernel" in r)
    threads = f"{s['threads']} thread{'s' if s['threads'] != 1 else ''}"
    head = (f"sparse inference ({len(done)}/{len(layers)} layers converted"
            f"{': ' + kinds if kinds else ''}; {threads}, batch {s['batch_size']}, "
            f"{s.get('allocator', 'system malloc')}"
            f"{'; calibrated: ' + kernels if kernels else ''})")
    return (f"{head}\n  test accuracy {100 * s['test_accuracy_sparse']:.2f}% (dense "
            f"{100 * s['test_accuracy_dense']:.2f}%), predictions agree "
            f"{100 * s['agreement']:.2f}% | per sample {s['dense_ms_per_sample']:.3f} ms dense, "
            f"{s['sparse_ms_per_sample']:.3f} ms sparse: {s['speedup']:.2f}x "
            f"({s['speedup_vs_folded_dense']:.2f}x vs the dense model with the same inference "
            f"rewrites, {s['dense_folded_ms_per_sample']:.3f} ms)")
