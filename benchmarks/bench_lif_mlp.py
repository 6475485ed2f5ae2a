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

``--device cuda`` on a machine without CUDA gives 'skipped: CUDA not available' rows.
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

IN, HIDDEN, OUT = 784, 512, 10
IMPLEMENTATIONS = ("relu", "spikesculpt", "spikesculpt-torch", "spikingjelly", "snntorch")


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


def build_impls():
    """name -> (model factory, after-step hook) or name -> 'not installed: ...'."""
    impls = {}
    impls["relu"] = (lambda: TimeMLP(nn.ReLU), None)

    from spikesculpt.neurons import LIF, functional

    class TorchPathLIF(LIF):
        def forward(self, x):
            return functional.lif_multistep(x, tau=self.tau, impl="torch", **self._common())

    impls["spikesculpt"] = (
        lambda: TimeMLP(lambda: LIF(tau=2.0, v_reset=0.0, surrogate="atan")), None)
    impls["spikesculpt-torch"] = (lambda: TimeMLP(lambda: TorchPathLIF(tau=2.0)), None)

    try:
        from spikingjelly.activation_based import functional as sj_functional
        from spikingjelly.activation_based import neuron as sj_neuron
        from spikingjelly.activation_based import surrogate as sj_surrogate

        def sj_model():
            return TimeMLP(lambda: sj_neuron.LIFNode(tau=2.0, v_reset=0.0, step_mode="m",
                                                     surrogate_function=sj_surrogate.ATan()))

        impls["spikingjelly"] = (sj_model, sj_functional.reset_net)
    except Exception as e:  # ImportError, or a missing dependency of it
        impls["spikingjelly"] = f"skipped: not installed ({type(e).__name__}: {e})"

    try:
        import snntorch as snn
        from snntorch import surrogate as snn_surrogate

        impls["snntorch"] = (lambda: SnnTorchStepped(snn, snn_surrogate), None)
    except Exception as e:
        impls["snntorch"] = f"skipped: not installed ({type(e).__name__}: {e})"
    return impls


# ------------------------------------------------------------------------------------------------


def machine_info(threads: int, device: str = "cpu") -> dict:
    versions = {}
    for mod in ("spikingjelly", "snntorch", "numpy"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = None
    from spikesculpt.neurons import cpu_kernel

    return {**provenance(threads, device), "spikesculpt_native_kernel": cpu_kernel.status(),
            "peers": versions}


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
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup = 3, 2, 2

    torch.set_num_threads(args.threads)
    T, B = args.T, args.batch
    missing = device_missing(args.device)
    device = torch.device("cpu" if missing else args.device)
    info = machine_info(torch.get_num_threads(), args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # every row skipped when the device is missing: the files still say why
    impls = {name: missing for name in IMPLEMENTATIONS} if missing else build_impls()
    if args.only:
        keep = set(args.only.split(","))
        impls = {k: v for k, v in impls.items() if k in keep or k == "relu"}

    # inputs: a few different Poisson batches (rate 0.2 per step), cycled; labels at random
    g = torch.Generator().manual_seed(0)
    batches = [((torch.rand(T, B, IN, generator=g) < 0.2).float().to(device),
                torch.randint(0, OUT, (B,), generator=g).to(device)) for _ in range(4)]

    runners = {}
    for name, spec in impls.items():
        if isinstance(spec, str):
            continue
        make, after = spec
        torch.manual_seed(0)
        model = make().to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        runners[name] = (model, opt, after)

    def train_steps(name, n, offset=0):
        model, opt, after = runners[name]
        for i in range(n):
            x, y = batches[(offset + i) % len(batches)]
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after is not None:
                after(model)

    names = list(runners)
    for name in names:
        train_steps(name, args.warmup)
    times = {name: [] for name in names}
    for rep in range(args.repeats if names else 0):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            sync()
            t0 = time.perf_counter()
            train_steps(name, args.steps, offset=rep)
            sync()
            times[name].append((time.perf_counter() - t0) / args.steps * 1e3)

    rows = []
    print(f"LIF MLP {IN}-{HIDDEN}-{HIDDEN}-{OUT}, T={T}, batch={B}, forward+backward+SGD step")
    if device.type == "cuda":
        print(f"GPU: {info['gpu']}")
    print(f"{info['cpu']}; torch {info['torch']}, {info['torch_threads']} threads, "
          f"python {info['python']}; {info['date']}")
    print(f"spikesculpt native kernel: {info['spikesculpt_native_kernel']}")
    print(f"{args.repeats} rounds x {args.steps} steps, interleaved; commit "
          f"{info['git_commit'][:7]}\n")
    print(f"{'implementation':<18} {'median':>8} {'min':>7} {'max':>7}  {'x ReLU':>6}  (ms/step; "
          "x ReLU = median of per-round ratios)")
    for name, spec in impls.items():
        if isinstance(spec, str):
            print(f"{name:<18} {spec}")
            rows.append({"implementation": name, "status": spec})
            continue
        ts = times[name]
        med = statistics.median(ts)
        ratio = statistics.median(t / b for t, b in zip(ts, times["relu"]))
        print(f"{name:<18} {med:8.2f} {min(ts):7.2f} {max(ts):7.2f}  {ratio:6.2f}")
        rows.append({"implementation": name, "status": "ok", "ms_per_step": round(med, 3),
                     "ms_min": round(min(ts), 3), "ms_max": round(max(ts), 3),
                     "ratio_to_relu": round(ratio, 3),
                     "ratio_of_medians": round(med / statistics.median(times["relu"]), 3),
                     "rounds_ms": [round(t, 3) for t in ts]})
    agree = "n/a (skipped)" if missing else spike_agreement(T, B)
    print(f"\nspikesculpt vs SpikingJelly LIF spikes on the same input: {agree}")

    out_dir = args.out_dir
    if out_dir is None and not args.quick:
        out_dir = str(Path(__file__).resolve().parent / "results")
    if out_dir:
        stem = result_stem(out_dir, "lif_mlp", info)
        config = {"T": T, "batch": B, "layers": [IN, HIDDEN, HIDDEN, OUT], "steps": args.steps,
                  "repeats": args.repeats, "warmup": args.warmup, "optimizer": "SGD(lr=0.05)",
                  "input": "Poisson rate 0.2 per step, [T, B, 784]"}
        with open(f"{stem}.json", "w") as f:
            json.dump({"benchmark": "lif_mlp", "machine": info, "config": config,
                       "spike_agreement_vs_spikingjelly": agree, "results": rows}, f, indent=2)
        with open(f"{stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["implementation", "status", "ms_per_step", "ms_min", "ms_max",
                        "ratio_to_relu", "T", "batch", "cpu", "torch_threads", "torch", "python",
                        "date", "native_kernel", "git_commit"])
            for r in rows:
                w.writerow([r["implementation"], r["status"], r.get("ms_per_step", ""),
                            r.get("ms_min", ""), r.get("ms_max", ""), r.get("ratio_to_relu", ""),
                            T, B, info["cpu"], info["torch_threads"], info["torch"],
                            info["python"], info["date"], info["spikesculpt_native_kernel"],
                            info["git_commit"]])
        print(f"wrote {stem}.json and {stem}.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
