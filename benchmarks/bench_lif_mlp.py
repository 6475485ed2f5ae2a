"""Training-step speed of a LIF MLP: spikesculpt vs SpikingJelly vs snnTorch vs a ReLU network.

The model is the same everywhere: 784-512-512-10, ``Linear -> neuron -> Linear -> neuron ->
Linear``, time-major input ``[T, B, 784]`` (random Poisson spikes, different at every time step),
output averaged over T, cross-entropy, forward + backward + SGD step. Every implementation does
the same matmuls: the linear layers act on the ``T·B`` rows of ``[T, B, F]`` at once; only the
neuron differs:

    relu          nn.ReLU on the [T, B, 512] activations (the lower bound: same matmuls, no neuron)
    spikesculpt   spikesculpt.neurons.LIF (tau=2, hard reset, atan surrogate): the default fused
                  kernel (the native C kernel when it is available, see neurons/cpu_kernel.py)
    spikesculpt-torch  the same LIF forced onto the pure-PyTorch fused kernel (impl="torch"):
                  what a machine without a C compiler gets
    spikingjelly  spikingjelly.activation_based.neuron.LIFNode(tau=2, step_mode='m', ATan),
                  reset with functional.reset_net after each step (part of the cost of using it)
    snntorch      snntorch.Leaky(beta=0.5, reset_mechanism='zero', ATan) stepped over T in Python

Peers are optional: a row says 'skipped: not installed' if the package is missing (see
benchmarks/README.md for how to install them without pulling a CUDA torch). Timing: warm-up
steps, then ``--repeats`` rounds; in each round every implementation runs ``--steps`` training
steps, in a rotating order (interleaved, so that a noisy shared machine slows all rows alike).
Reported: the median and minimum over rounds of ms per step, and the ratio to the ReLU
network: the median over rounds of (this row's time / the ReLU row's time in the same round),
which cancels most of the machine's drift.

    python benchmarks/bench_lif_mlp.py                 # full run, writes benchmarks/results/
    python benchmarks/bench_lif_mlp.py --quick         # a few steps, smoke test, writes nothing
                                                       # (unless --out-dir)

``--device cuda`` on a machine without CUDA gives 'skipped: CUDA not available' rows. On CUDA
the default spikesculpt row runs the Triton kernel (``neurons/gpu_kernel.py``) and every row also
reports its peak memory: the most memory a training step allocated above what was allocated
before it (activations kept for the backward, gradients, temporaries), the median over rounds.

``--compile MODE`` adds, beside every row, the same model through ``torch.compile`` with that
mode (``<name>+compile``; spikesculpt's ``--compile``, ``train/compiled.py``; ``reduce-overhead``
replays CUDA graphs), timed in the same interleaved rounds. ``spikesculpt+compile`` keeps our
kernels as a custom op in the graph (``neurons/ops.py``); ``spikesculpt-torch+compile`` traces
the neuron's PyTorch ops, which Inductor fuses on its own. Compiled rows also report their
ratio to the compiled ReLU network, and every row its warm-up time (compiled: mostly
compilation).

``--model vggsnn`` (the conv benchmark, also ``bench_lif_conv.py``): VGGSNN as in TET (Deng et
al. 2022) for CIFAR10-DVS, input ``[T, B, 2, 48, 48]`` (random events, 10% per step):
8 × (conv 3x3 -> BatchNorm -> neuron), 2x2 average pooling after layers 2, 4, 6 and 8, channels
64-128-256-256-512-512-512-512, then a linear classifier on 512·3·3; the convolutions and
BatchNorm act on the T·B images at once. ``--amp`` runs the forward under bf16 autocast.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from machine import device_missing, provenance, result_stem  # benchmarks/machine.py
from torch import nn

from spikesculpt.train.compiled import COMPILE_MODES, compile_model

IN, HIDDEN, OUT = 784, 512, 10
IMPLEMENTATIONS = ("relu", "spikesculpt", "spikesculpt-torch", "spikingjelly", "snntorch")
COMPILED = "+compile"  # the row name suffix of a model run through torch.compile (--compile)
VGG_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
VGG_POOL_AFTER = (1, 3, 5, 7)  # layer indices followed by 2x2 average pooling


# ------------------------------------------------------------------------------------------------
# models: each maps x[T, B, 784] -> logits[B, 10]


class TimeMLP(nn.Module):
    """Linear -> neuron -> Linear -> neuron -> Linear on [T, B, F]; output averaged over T."""

    def __init__(self, make_neuron):
        super().__init__()
        self.fc1 = nn.Linear(IN, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, HIDDEN)
        self.fc3 = nn.Linear(HIDDEN, OUT)
        self.n1, self.n2 = make_neuron(), make_neuron()

    def forward(self, x):
        h = self.n1(self.fc1(x))       # [T, B, 512]
        h = self.n2(self.fc2(h))       # [T, B, 512]
        return self.fc3(h).mean(0)     # [B, 10]


class VGGSNN(nn.Module):
    """TET's VGGSNN for CIFAR10-DVS: x[T, B, 2, 48, 48] -> logits[B, 10] (averaged over T)."""

    def __init__(self, make_neuron, in_channels=2, size=48, classes=10):
        super().__init__()
        layers, c = [], in_channels
        for i, out in enumerate(VGG_CHANNELS):
            layers.append(nn.ModuleList([nn.Conv2d(c, out, 3, padding=1, bias=False),
                                         nn.BatchNorm2d(out), make_neuron()]))
            c = out
        self.layers = nn.ModuleList(layers)
        self.fc = nn.Linear(c * (size // 16) ** 2, classes)

    def forward(self, x):
        T, B = x.shape[:2]
        h = x.flatten(0, 1)                                  # [T·B, C, H, W]
        for i, (conv, bn, neuron) in enumerate(self.layers):
            h = bn(conv(h))
            h = neuron(h.unflatten(0, (T, B))).flatten(0, 1)  # the neuron sees [T, B, C, H, W]
            if i in VGG_POOL_AFTER:
                h = nn.functional.avg_pool2d(h, 2)
        return self.fc(h.flatten(1)).unflatten(0, (T, B)).mean(0)


class SnnTorchStepped(nn.Module):
    """snnTorch's Leaky stepped over T (its documented usage); linear layers on all T·B rows."""

    def __init__(self, snn, surrogate):
        super().__init__()
        self.fc1 = nn.Linear(IN, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, HIDDEN)
        self.fc3 = nn.Linear(HIDDEN, OUT)
        self.n1 = snn.Leaky(beta=0.5, reset_mechanism="zero", spike_grad=surrogate.atan())
        self.n2 = snn.Leaky(beta=0.5, reset_mechanism="zero", spike_grad=surrogate.atan())

    def _run(self, neuron, cur):
        mem = neuron.init_leaky()
        out = []
        for t in range(cur.shape[0]):
            spk, mem = neuron(cur[t], mem)
            out.append(spk)
        return torch.stack(out)

    def forward(self, x):
        h = self._run(self.n1, self.fc1(x))
        h = self._run(self.n2, self.fc2(h))
        return self.fc3(h).mean(0)


def build_impls(model: str = "mlp"):
    """name -> (model factory, after-step hook) or name -> 'skipped: ...'."""
    net = TimeMLP if model == "mlp" else VGGSNN
    impls = {}
    impls["relu"] = (lambda: net(nn.ReLU), None)

    from spikesculpt.neurons import LIF, functional

    class TorchPathLIF(LIF):
        def forward(self, x):
            return functional.lif_multistep(x, tau=self.tau, impl="torch", **self._common())

    impls["spikesculpt"] = (
        lambda: net(lambda: LIF(tau=2.0, v_reset=0.0, surrogate="atan")), None)
    impls["spikesculpt-torch"] = (lambda: net(lambda: TorchPathLIF(tau=2.0)), None)

    try:
        from spikingjelly.activation_based import functional as sj_functional
        from spikingjelly.activation_based import neuron as sj_neuron
        from spikingjelly.activation_based import surrogate as sj_surrogate

        def sj_model():
            return net(lambda: sj_neuron.LIFNode(tau=2.0, v_reset=0.0, step_mode="m",
                                                 surrogate_function=sj_surrogate.ATan()))

        impls["spikingjelly"] = (sj_model, sj_functional.reset_net)
    except Exception as e:  # ImportError, or a missing dependency of it
        impls["spikingjelly"] = f"skipped: not installed ({type(e).__name__}: {e})"

    if model != "mlp":
        impls["snntorch"] = "skipped: stepped in Python over T, not run for the conv model"
        return impls
    try:
        import snntorch as snn
        from snntorch import surrogate as snn_surrogate

        impls["snntorch"] = (lambda: SnnTorchStepped(snn, snn_surrogate), None)
    except Exception as e:
        impls["snntorch"] = f"skipped: not installed ({type(e).__name__}: {e})"
    return impls


def spikingjelly_backend() -> str:
    """Which LIF implementation SpikingJelly bound on CUDA ('n/a' if it did not run there)."""
    try:
        from spikingjelly._ops import lif as sj_lif

        bound = {k: getattr(v, "name", v) for k, v in sj_lif._selection._selections.items()}
        return ", ".join(f"cuda:{k}={v}" for k, v in bound.items()) or "n/a"
    except Exception as e:
        return f"n/a ({type(e).__name__})"


# ------------------------------------------------------------------------------------------------


def machine_info(threads: int, device: str = "cpu") -> dict:
    versions = {}
    for mod in ("spikingjelly", "snntorch", "numpy"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = None
    from spikesculpt.neurons import cpu_kernel, gpu_kernel

    return {**provenance(threads, device), "spikesculpt_native_kernel": cpu_kernel.status(),
            "spikesculpt_gpu_kernel": gpu_kernel.status(), "peers": versions}


def spike_agreement(T: int, B: int) -> str:
    """Fraction of identical spikes between spikesculpt's LIF and SpikingJelly's on one input."""
    try:
        from spikingjelly.activation_based import neuron as sj_neuron
    except Exception:
        return "n/a (spikingjelly not installed)"
    from spikesculpt.neurons import LIF

    g = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, HIDDEN, generator=g) * 1.5 + 0.8
    with torch.no_grad():
        a = LIF(tau=2.0)(x)
        b = sj_neuron.LIFNode(tau=2.0, step_mode="m")(x)
    return f"{(a == b).float().mean().item():.6f} equal (firing rate {a.mean().item():.3f})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("mlp", "vggsnn"), default="mlp",
                   help="mlp: 784-512-512-10; vggsnn: the conv benchmark (CIFAR10-DVS shape)")
    p.add_argument("--T", type=int, default=None, help="time steps (default 8; vggsnn 10)")
    p.add_argument("--batch", type=int, default=None, help="batch (default 64; vggsnn 32)")
    p.add_argument("--amp", action="store_true", help="forward under bf16 autocast (CUDA)")
    p.add_argument("--compile", default="none", choices=COMPILE_MODES,
                   help="torch.compile every model with this mode (spikesculpt's --compile, "
                        "train/compiled.py); reduce-overhead adds CUDA graphs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="training steps per timed round")
    p.add_argument("--repeats", type=int, default=15, help="timed rounds (median reported)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--only", default="", help="comma-separated subset of implementations")
    p.add_argument("--device", default="cpu", help="cpu | cuda (times with synchronisation)")
    p.add_argument("--quick", action="store_true",
                   help="a few steps only (smoke test); writes files only with --out-dir")
    p.add_argument("--out-dir", default=None,
                   help="where to write JSON + CSV (default benchmarks/results/; --quick: none)")
    return p


def main(argv=None, parser=None) -> int:
    args = (parser or build_parser()).parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup = 3, 2, 2

    torch.set_num_threads(args.threads)
    vgg = args.model == "vggsnn"
    T = args.T or (10 if vgg else 8)
    B = args.batch or (32 if vgg else 64)
    missing = device_missing(args.device)
    device = torch.device("cpu" if missing else args.device)
    info = machine_info(torch.get_num_threads(), args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # every row skipped when the device is missing: the files still say why
    impls = {name: missing for name in IMPLEMENTATIONS} if missing else build_impls(args.model)
    if args.only:
        keep = set(args.only.split(","))
        impls = {k: v for k, v in impls.items() if k in keep or k == "relu"}
    if args.compile != "none":  # every model also through torch.compile, in the same rounds
        impls = {k: v for name, spec in impls.items()
                 for k, v in [(name, spec)] + ([(name + COMPILED, spec)]
                                               if not isinstance(spec, str) else [])}

    # inputs: a few different Poisson batches (rate 0.2 per step), cycled; labels at random
    g = torch.Generator().manual_seed(0)
    shape, rate = ((2, 48, 48), 0.1) if vgg else ((IN,), 0.2)
    batches = [((torch.rand(T, B, *shape, generator=g) < rate).float().to(device),
                torch.randint(0, OUT, (B,), generator=g).to(device)) for _ in range(4)]
    cuda = device.type == "cuda"
    amp = args.amp and cuda

    runners = {}
    for name, spec in impls.items():
        if isinstance(spec, str):
            continue
        make, after = spec
        torch.manual_seed(0)
        model = make().to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        mode = args.compile if name.endswith(COMPILED) else "none"
        runners[name] = (compile_model(model, mode, device), opt, after)

    def train_steps(name, n, offset=0):
        model, opt, after = runners[name]
        for i in range(n):
            x, y = batches[(offset + i) % len(batches)]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                out = model(x)
            loss = nn.functional.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after is not None:
                after(model)

    warmup_s = {}  # with --compile: mostly compilation (the first steps capture the graphs)
    for name in list(runners):
        sync()
        t0 = time.perf_counter()
        try:
            train_steps(name, args.warmup)
        except Exception as e:  # e.g. a peer's kernels that torch.compile cannot trace
            if not name.endswith(COMPILED) or name == "relu" + COMPILED:
                raise
            del runners[name]
            impls[name] = f"failed under torch.compile: {type(e).__name__}: {str(e)[:160]}"
            continue
        sync()
        warmup_s[name] = time.perf_counter() - t0
    names = list(runners)
    times = {name: [] for name in names}
    peaks = {name: [] for name in names}
    for rep in range(args.repeats if names else 0):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            sync()
            if cuda:
                base = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
            t0 = time.perf_counter()
            train_steps(name, args.steps, offset=rep)
            sync()
            times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
            if cuda:
                peaks[name].append((torch.cuda.max_memory_allocated(device) - base) / 2**20)
    sj_backend = spikingjelly_backend() if cuda and "spikingjelly" in runners else "n/a"

    rows = []
    what = ("VGGSNN (CIFAR10-DVS 2x48x48)" if vgg else f"LIF MLP {IN}-{HIDDEN}-{HIDDEN}-{OUT}")
    print(f"{what}, T={T}, batch={B}, forward+backward+SGD step"
          + (", bf16 autocast" if amp else "")
          + (f", torch.compile mode {args.compile}" if args.compile != "none" else ""))
    if device.type == "cuda":
        print(f"GPU: {info['gpu']}; spikesculpt: {info['spikesculpt_gpu_kernel']}; "
              f"SpikingJelly LIF backend: {sj_backend}")
    print(f"{info['cpu']}; torch {info['torch']}, {info['torch_threads']} threads, "
          f"python {info['python']}; {info['date']}")
    print(f"spikesculpt native kernel: {info['spikesculpt_native_kernel']}")
    print(f"{args.repeats} rounds x {args.steps} steps, interleaved; commit "
          f"{info['git_commit'][:7]}\n")
    print(f"{'implementation':<26} {'median':>8} {'min':>7} {'max':>7}  {'x ReLU':>6}  "
          f"{'x ReLU' + COMPILED if args.compile != 'none' else '':>6}  "
          f"{'peak MiB' if cuda else ''}  (ms/step; x ReLU = median of per-round ratios)")
    for name, spec in impls.items():
        if isinstance(spec, str):
            print(f"{name:<26} {spec}")
            rows.append({"implementation": name, "status": spec})
            continue
        ts = times[name]
        med = statistics.median(ts)
        ratio = statistics.median(t / b for t, b in zip(ts, times["relu"]))
        peak = round(statistics.median(peaks[name]), 1) if peaks[name] else None
        # compiled rows: also against the compiled ReLU network (both through torch.compile)
        same = (statistics.median(t / b for t, b in zip(ts, times["relu" + COMPILED]))
                if name.endswith(COMPILED) and "relu" + COMPILED in times else None)
        print(f"{name:<26} {med:8.2f} {min(ts):7.2f} {max(ts):7.2f}  {ratio:6.2f}  "
              f"{'' if same is None else f'{same:6.2f}':>6}  "
              f"{'' if peak is None else f'{peak:8.1f}'}")
        rows.append({"implementation": name, "status": "ok", "ms_per_step": round(med, 3),
                     "peak_mib": peak, "warmup_s": round(warmup_s[name], 2),
                     "ratio_to_compiled_relu": None if same is None else round(same, 3),
                     "ms_min": round(min(ts), 3), "ms_max": round(max(ts), 3),
                     "ratio_to_relu": round(ratio, 3),
                     "ratio_of_medians": round(med / statistics.median(times["relu"]), 3),
                     "rounds_ms": [round(t, 3) for t in ts]})
    agree = "n/a (skipped)" if missing or vgg else spike_agreement(T, B)
    print(f"\nspikesculpt vs SpikingJelly LIF spikes on the same input: {agree}")

    out_dir = args.out_dir
    if out_dir is None and not args.quick:
        out_dir = str(Path(__file__).resolve().parent / "results")
    if out_dir:
        bench_name = "lif_vggsnn" if vgg else "lif_mlp"
        suffix = ("_amp" if amp else "") + ("" if args.compile == "none"
                                            else f"_compile-{args.compile}")
        stem = result_stem(out_dir, bench_name + suffix, info)
        config = {"model": args.model, "T": T, "batch": B, "amp_bf16": amp,
                  "compile": args.compile,
                  "layers": list(VGG_CHANNELS) if vgg else [IN, HIDDEN, HIDDEN, OUT],
                  "steps": args.steps, "repeats": args.repeats, "warmup": args.warmup,
                  "optimizer": "SGD(lr=0.05)", "spikingjelly_backend": sj_backend,
                  "peak_mib": "max allocated during a round's steps minus allocated before it",
                  "input": f"random events rate {rate} per step, [T, B, "
                           f"{', '.join(map(str, shape))}]"}
        with open(f"{stem}.json", "w") as f:
            json.dump({"benchmark": bench_name, "machine": info, "config": config,
                       "spike_agreement_vs_spikingjelly": agree, "results": rows}, f, indent=2)
        with open(f"{stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["implementation", "status", "ms_per_step", "ms_min", "ms_max",
                        "ratio_to_relu", "peak_mib", "T", "batch", "cpu", "torch_threads", "torch",
                        "python", "date", "native_kernel", "git_commit"])
            for r in rows:
                w.writerow([r["implementation"], r["status"], r.get("ms_per_step", ""),
                            r.get("ms_min", ""), r.get("ms_max", ""), r.get("ratio_to_relu", ""),
                            r.get("peak_mib", ""), T, B, info["cpu"], info["torch_threads"],
                            info["torch"], info["python"], info["date"],
                            info["spikesculpt_native_kernel"], info["git_commit"]])
        print(f"wrote {stem}.json and {stem}.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
