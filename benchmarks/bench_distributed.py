"""Data-parallel training (torch.distributed): communication per step / mask update, and the
time of a training step in 2 gloo processes against 1 (docs/distributed.md quotes both).

Communication, for ESL with each growth rule on the ``conv`` model (digits, 8x8):

- every step, DDP all-reduces every trainable gradient once (float32): ``4 · Σ numel`` bytes
  per rank *given* to the all-reduce (a ring moves ``2 (W-1)/W`` of that per rank), computed
  from the model's parameters;
- per mask update, the extra collectives spikesculpt issues, *counted* by wrapping
  ``torch.distributed.all_reduce`` in a 2-process gloo run of a few update steps: the Hebbian
  coincidences (one weight-sized float32 tensor per masked layer), nothing for ``random``
  (a generator seeded alike on every rank) and ``gradient`` (DDP's reduced gradient), and the
  optional mask check (``SPIKESCULPT_CHECK_MASKS=1``: 2 × 3 float64 per masked layer).

Time: seconds per training step of the global batch (64; the median of ``--epochs`` epochs after
a warm-up epoch), dense and ESL (hebbian growth, an update every 2 steps), in one process and
in two gloo processes (each on its half of every batch), one thread per process; ``nice`` it on
a shared machine. A ratio < 1 means 2 processes are faster.

    python benchmarks/bench_distributed.py            # writes benchmarks/results/distributed_*
    python benchmarks/bench_distributed.py --quick    # a few steps, writes nothing
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from machine import provenance, result_stem  # benchmarks/machine.py

from spikesculpt.cli.launch import free_port
from spikesculpt.config import TrainConfig
from spikesculpt.experiments.train_run import build
from spikesculpt.train.distributed import init_from_env, shutdown
from spikesculpt.train.trainer import Trainer

GROWTH = ("random", "gradient", "hebbian")


def config(method: str, grow: str | None = None, epochs: int = 1) -> TrainConfig:
    cfg = TrainConfig(dataset="digits", model="conv", method=method, epochs=epochs,
                      batch_size=64, device="cpu", init_firing=0.0)
    if method == "esl":
        cfg.sparse.grow, cfg.sparse.update_every, cfg.sparse.density = grow, 2, 0.1
    return cfg


def trainer_for(cfg: TrainConfig) -> Trainer:
    splits, model, callbacks = build(cfg)
    return Trainer(model, splits, cfg, callbacks, progress=False)


def timed_steps(trainer: Trainer, epochs: int) -> float:
    """Seconds per training step (one global batch), the median over ``epochs`` timed epochs
    after one warm-up epoch."""
    trainer.train_epoch(0)
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        trainer.train_epoch(epoch)
        times.append((time.perf_counter() - start) / trainer.steps_per_epoch)
    return sorted(times)[len(times) // 2]


def rank_main(rank: int, world: int, port: int, epochs: int, queue) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    init_from_env()
    counted: dict[str, int] = {}
    original = dist.all_reduce

    def counting(tensor, *args, **kwargs):
        counted[phase[0]] = counted.get(phase[0], 0) + tensor.numel() * tensor.element_size()
        return original(tensor, *args, **kwargs)

    dist.all_reduce = counting
    phase = ["setup"]
    result = {"extra_bytes_per_update": {}, "updates": {}}
    for name, cfg in [("dense", config("dense"))] + [(g, config("esl", g)) for g in GROWTH]:
        trainer = trainer_for(cfg)
        phase[0] = name
        counted[name] = 0
        trainer.train_epoch(0)  # DDP's own gradient all-reduce is not counted (C++ reducer)
        updates = len(getattr(trainer.callbacks[0], "updates", []))
        result["updates"][name] = updates
        if name != "dense":  # the epoch's bookkeeping (loss, counts, BN stats) taken off
            result["extra_bytes_per_update"][name] = (counted[name] - counted["dense"]) \
                / max(updates, 1)
    dist.all_reduce = original
    for method_name in ("dense", "esl"):
        result[f"seconds_per_step_{method_name}"] = timed_steps(
            trainer_for(config(method_name, "hebbian")), epochs)
    if rank == 0:
        queue.put(result)
    shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (median)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args()
    epochs = 1 if args.quick else args.epochs
    torch.set_num_threads(1)

    probe = trainer_for(config("esl", "random"))
    masked = dict(probe.callbacks[0].mask.items())
    grad_bytes = 4 * sum(p.numel() for p in probe.model.parameters() if p.requires_grad)
    one = {m: timed_steps(trainer_for(config(m, "hebbian")), epochs) for m in ("dense", "esl")}
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(rank_main, args=(2, free_port(), epochs, queue), nprocs=2,
                       start_method="spawn")
    two = queue.get()
    rows = {
        "model": "conv", "dataset": "digits", "global_batch": 64, "density": 0.1,
        "ddp_gradient_bytes_per_step": grad_bytes,
        "ring_bytes_per_rank_per_step_w2": grad_bytes * 2 * (2 - 1) / 2,
        "masked_layers": {n: list(m.shape) for n, m in masked.items()},
        "hebbian_bytes_per_update_computed": 4 * sum(m.numel() for m in masked.values()),
        "mask_check_bytes_per_update": 2 * 3 * 8 * len(masked),
        "extra_bytes_per_update_counted": two["extra_bytes_per_update"],
        "updates_counted": two["updates"],
        "seconds_per_step_1proc": one,
        "seconds_per_step_2proc": {m: two[f"seconds_per_step_{m}"] for m in ("dense", "esl")},
        "ratio_2proc_over_1proc": {m: two[f"seconds_per_step_{m}"] / one[m]
                                   for m in ("dense", "esl")},
    }
    print(json.dumps(rows, indent=1))
    if args.quick and args.out_dir is None:
        return 0
    meta = provenance(threads=1)
    stem = result_stem(args.out_dir or Path(__file__).parent / "results", "distributed", meta)
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    print(f"wrote {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
