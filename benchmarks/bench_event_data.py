"""Event data: DVS-emulation throughput, and first-epoch vs cached-epoch data loading, side by side.

Measured in one run on one machine:

1. Emulation: all 1,797 scikit-learn digits through ``DVSEmulator()`` (defaults: 34x34 sensor,
   three 100 ms saccades at 1 ms steps, 0.1 Hz noise): seconds, events, events/s, images/s;
   median over ``--repeats`` runs. (The emulator runs on one torch thread by design.)
2. Loading, for ``digits-dvs`` (emulated) and ``nmnist`` (the same recordings written as 1,797
   N-MNIST ATIS ``.bin`` files, so the native reader is timed on real files):
   - *first epoch*: ``load_dataset`` with an empty frame cache (emulate or parse, bin, write the
     cache) plus one pass over the training batches (what the trainer does per epoch);
   - *cached epoch*: ``load_dataset`` again (read + SHA-256 check of the cache) plus one pass;
   - *cached, memory-mapped*: the same with ``SPIKESCULPT_FRAMES_IN_MEMORY_GB=0``, i.e. the path
     datasets too large for memory take (per-sample reads through a ``DataLoader``).
   The ratio first / cached is the time the cache saves per run after the first. Each of the
   ``--repeats`` rounds starts from an empty cache; the table gives medians over the rounds.

    python benchmarks/bench_event_data.py               # writes benchmarks/results/
    python benchmarks/bench_event_data.py --quick       # 200 digits, no files written
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

import numpy as np
import torch
from machine import provenance, result_stem  # benchmarks/machine.py


def machine_info(threads: int) -> dict:
    return {**provenance(threads), "numpy": np.__version__}


def write_nmnist_bin(path: Path, events) -> None:
    """N-MNIST ATIS format: 5 bytes per event (x, y, p<<7 | t>>16 & 0x7F, t>>8, t)."""
    t = events["t"].astype(np.int64)
    raw = np.empty((len(events), 5), dtype=np.uint8)
    raw[:, 0] = events["x"]
    raw[:, 1] = events["y"]
    raw[:, 2] = (events["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    path.write_bytes(raw.tobytes())


def epoch_pass(dataset, batch_size: int) -> float:
    """Seconds for one pass over ``dataset`` in shuffled batches, as the trainer iterates."""
    from spikesculpt.train.trainer import iterate_batches

    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    total = 0.0
    for x, _ in iterate_batches(dataset, batch_size, True, g):
        total += float(x[:, 0, 0, 0, 0].sum())  # touch the batch
    return time.perf_counter() - start


def timed_load(name: str, data_root, timesteps: int, batch: int) -> dict:
    from spikesculpt.data import load_dataset

    start = time.perf_counter()
    splits = load_dataset(name, seed=0, data_root=data_root, timesteps=timesteps)
    load_s = time.perf_counter() - start
    iter_s = epoch_pass(splits.train, batch)
    return {"load_s": load_s, "epoch_iteration_s": iter_s, "total_s": load_s + iter_s,
            "train_samples": len(splits.train)}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 digits, 1 repeat, no files")
    ap.add_argument("--repeats", type=int, default=3, help="emulation repeats (median)")
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for loading")
    ap.add_argument("--out-dir", default=None,
                    help="default benchmarks/results/ (--quick: no files unless given)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)

    from spikesculpt.data.events.dvs_emulator import DVSEmulator
    from spikesculpt.data.sets.digits import digits_arrays, digits_test_split

    info = machine_info(args.threads)
    print(f"{info['cpu']}; torch {info['torch']}, {args.threads} threads (emulator: 1)")
    x, y = digits_arrays()
    n = 200 if args.quick else len(x)
    repeats = 1 if args.quick else args.repeats
    emu = DVSEmulator()
    times, events = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        events = emu.emulate(x[:n])
        times.append(time.perf_counter() - start)
    n_events = sum(len(e) for e in events)
    emu_s = statistics.median(times)
    emulation = {"images": n, "events": n_events, "events_per_image": n_events / n,
                 "seconds_median": emu_s, "seconds_all": times,
                 "events_per_s": n_events / emu_s, "images_per_s": n / emu_s,
                 "emulator": emu.to_dict()}
    print(f"emulation: {n} images, {n_events} events in {emu_s:.2f} s (median of {repeats}): "
          f"{n_events / emu_s / 1e6:.2f} M events/s, {n / emu_s:.0f} images/s")

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        tmp = Path(tmp)
        # the same recordings as N-MNIST files: train pool / fixed test split of digits
        pool, test = digits_test_split()
        test_set = set(test.tolist())
        for i in range(n):
            split = "Test" if i in test_set else "Train"
            d = tmp / "data" / "N-MNIST" / split / str(int(y[i]))
            d.mkdir(parents=True, exist_ok=True)
            write_nmnist_bin(d / f"{i:05d}.bin", events[i])
        cases = [("digits-dvs", None), ("nmnist", str(tmp / "data"))]
        if args.quick:
            cases = cases[1:]  # digits-dvs always emulates all 1,797 digits
        states = ("first epoch (empty cache)", "cached epoch", "cached epoch, memory-mapped")
        for name, root in cases:
            runs = {s: [] for s in states}
            for k in range(repeats):  # interleaved rounds, each with an empty cache first
                os.environ["SPIKESCULPT_CACHE_DIR"] = str(tmp / f"cache-{name}-{k}")
                os.environ.pop("SPIKESCULPT_FRAMES_IN_MEMORY_GB", None)
                runs[states[0]].append(timed_load(name, root, args.timesteps, args.batch))
                runs[states[1]].append(timed_load(name, root, args.timesteps, args.batch))
                os.environ["SPIKESCULPT_FRAMES_IN_MEMORY_GB"] = "0"
                runs[states[2]].append(timed_load(name, root, args.timesteps, args.batch))
                os.environ.pop("SPIKESCULPT_FRAMES_IN_MEMORY_GB", None)
            first = statistics.median(r["total_s"] for r in runs[states[0]])
            for state in states:
                med = {key: statistics.median(r[key] for r in runs[state])
                       for key in ("load_s", "epoch_iteration_s", "total_s")}
                rows.append({"dataset": name, "state": state,
                             **{key: round(v, 4) for key, v in med.items()},
                             "train_samples": runs[state][0]["train_samples"],
                             "total_s_all": [round(r["total_s"], 4) for r in runs[state]],
                             "ratio_first_to_this": round(first / med["total_s"], 2)})
    print(f"\n{'dataset':<11} {'state':<29} {'load s':>8} {'epoch s':>8} {'total s':>8} "
          f"{'first/this':>10}")
    for r in rows:
        print(f"{r['dataset']:<11} {r['state']:<29} {r['load_s']:8.3f} "
              f"{r['epoch_iteration_s']:8.3f} {r['total_s']:8.3f} {r['ratio_first_to_this']:10.2f}")

    out_dir = args.out_dir
    if out_dir is None and not args.quick:
        out_dir = str(Path(__file__).resolve().parent / "results")
    if out_dir:
        stem = result_stem(out_dir, "event_data", info)
        config = {"timesteps": args.timesteps, "batch": args.batch, "repeats": repeats,
                  "bins": "time"}
        with open(f"{stem}.json", "w") as f:
            json.dump({"benchmark": "event_data", "machine": info, "config": config,
                       "emulation": emulation, "loading": rows}, f, indent=2)
        with open(f"{stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["measure", "dataset", "state", "seconds", "events_per_s", "load_s",
                        "epoch_iteration_s", "ratio_first_to_this", "T", "cpu", "torch_threads",
                        "torch", "date"])
            w.writerow(["emulation", "digits (1,797 images)", "", round(emu_s, 4),
                        round(n_events / emu_s), "", "", "", "", info["cpu"], 1, info["torch"],
                        info["date"]])
            for r in rows:
                w.writerow(["loading", r["dataset"], r["state"], r["total_s"], "", r["load_s"],
                            r["epoch_iteration_s"], r["ratio_first_to_this"], args.timesteps,
                            info["cpu"], args.threads, info["torch"], info["date"]])
        print(f"wrote {stem}.json and {stem}.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
