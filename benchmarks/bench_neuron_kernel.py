"""The neuron alone on a GPU: time per call and bytes kept for the backward, per neuron per step.

For a LIF layer (tau = 2, hard reset to 0, atan surrogate) on ``x[T, N]`` with gradient: forward
alone, and forward + backward (dL/dS random), for spikesculpt's Triton kernel, spikesculpt's
PyTorch-ops path and SpikingJelly 2.0's LIFNode (its default GPU backend), interleaved, median of
``--repeats`` CUDA-event timings. "saved B/neuron/step" counts the bytes of every tensor autograd
keeps for the neuron's backward (``torch.autograd.graph.saved_tensors_hooks``), over T·N: the
memory a training step holds per neuron per time step, besides the spikes (the next layer's
input). Sizes: a tiny layer (T = 8, 1,024 neurons: the time is the per-call overhead), the
MLP's hidden layer (T = 8, 256 × 512) and a VGGSNN layer (T = 10, 32 × 64 × 48 × 48); float32
and bfloat16 inputs. Rows: ReLU (a lower bound: one elementwise op each way), spikesculpt
(Triton kernel), the PyTorch-ops path, SpikingJelly.

    python benchmarks/bench_neuron_kernel.py --device cuda --out-dir benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch
from machine import device_missing, provenance, result_stem  # benchmarks/machine.py

SIZES = {"tiny": (8, 1024), "mlp-hidden": (8, 256 * 512), "vgg-layer1": (10, 32 * 64 * 48 * 48)}


def neurons():
    import torch.nn as nn

    from spikesculpt.neurons import LIF, functional

    lif = LIF(tau=2.0)
    out = {"relu": nn.ReLU(), "spikesculpt": lif,
           "spikesculpt-torch": lambda x: functional.lif_multistep(x, tau=2.0, impl="torch")}
    try:
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import neuron as sjn
        from spikingjelly.activation_based import surrogate as sjs

        node = sjn.LIFNode(tau=2.0, v_reset=0.0, step_mode="m", surrogate_function=sjs.ATan())

        def sj(x):
            sjf.reset_net(node)
            return node(x)

        out["spikingjelly"] = sj
    except Exception as e:
        out["spikingjelly"] = f"skipped: {type(e).__name__}: {e}"
    return out


def saved_bytes(fn, x) -> int:
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return total[0]


def time_ms(fn, repeats: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds (median reported)")
    p.add_argument("--calls", type=int, default=10, help="calls per timed round")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    missing = device_missing(args.device)
    if missing or not args.device.startswith("cuda"):
        print(f"bench_neuron_kernel: {missing or 'needs a CUDA device'}")
        return 0
    dev = torch.device(args.device)
    info = provenance(torch.get_num_threads(), args.device)
    fns = neurons()
    rows = []
    print(f"GPU {info['gpu']}; LIF tau=2 hard reset, atan; ms per call (median of "
          f"{args.repeats} x {args.calls}); saved = bytes kept for the backward / (T·N)")
    print(f"{'size':<11} {'dtype':<9} {'implementation':<18} {'fwd ms':>8} {'fwd+bwd ms':>11} "
          f"{'saved B/neuron/step':>20}")
    for size, (T, N) in SIZES.items():
        for dtype in (torch.float32, torch.bfloat16):
            g = torch.Generator(device=dev).manual_seed(0)
            x = (torch.randn(T, N, device=dev, generator=g, dtype=torch.float32) * 1.2 + 0.5
                 ).to(dtype).requires_grad_(True)
            gs = torch.randn(T, N, device=dev, generator=g, dtype=torch.float32).to(dtype)
            runs = {}
            for name, fn in fns.items():
                if isinstance(fn, str):
                    continue

                def fwd(fn=fn):
                    with torch.no_grad():
                        fn(x)

                def fwd_bwd(fn=fn):
                    fn(x).backward(gs)

                fwd_bwd()
                fwd()
                runs[name] = (fwd, fwd_bwd, saved_bytes(fn, x) / (T * N))
            t_f = {k: [] for k in runs}
            t_fb = {k: [] for k in runs}
            for rep in range(args.repeats):
                order = list(runs)[rep % len(runs):] + list(runs)[:rep % len(runs)]
                for name in order:
                    t_f[name].append(time_ms(runs[name][0], args.calls))
                    t_fb[name].append(time_ms(runs[name][1], args.calls))
            for name, (_, _, saved) in runs.items():
                f, fb = statistics.median(t_f[name]), statistics.median(t_fb[name])
                dt = str(dtype).replace("torch.", "")
                print(f"{size:<11} {dt:<9} {name:<18} {f:8.3f} {fb:11.3f} {saved:20.2f}")
                rows.append({"size": size, "T": T, "N": N, "dtype": dt, "implementation": name,
                             "fwd_ms": round(f, 4), "fwd_bwd_ms": round(fb, 4),
                             "saved_bytes_per_neuron_step": round(saved, 3)})
            x.grad = None
    for name, fn in fns.items():
        if isinstance(fn, str):
            print(f"{name}: {fn}")
    if args.out_dir:
        stem = result_stem(args.out_dir, "neuron_kernel", info)
        with open(f"{stem}.json", "w") as f:
            json.dump({"benchmark": "neuron_kernel", "machine": info, "results": rows}, f,
                      indent=2)
        print(f"wrote {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
