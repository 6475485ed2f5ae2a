"""One rank of the 2-process gloo runs of ``tests/test_distributed.py``.

Started twice by the test (``RANK`` 0 and 1, the environment ``--nproc`` gives its children),
with ``SPIKESCULPT_CHECK_MASKS=1``: every mask update is checked identical on both ranks. Runs
dense, ESL with each growth rule and an IMP search (Python API, one process group: the imports
are paid once), and last, through the CLI, the final training of the evolution whose search the
test ran in one process (``OUT/evolve``), then writes ``rank<R>.json`` (with plain ``open``:
``core.io`` writes nothing on rank 1) holding what the test asserts: the checks made, the files
this rank replaced into place (``os.replace`` calls: rank 0 only) and the metrics.

    python tests/distributed_worker.py DATASET OUT_FOLDER
"""

import json
import os
import sys
from pathlib import Path

import torch

import spikesculpt.core.io as io_module
import spikesculpt.experiments.lottery.context as lottery_context
import spikesculpt.methods.dynamic.base as sparse_base
from spikesculpt.cli.main import main as cli_main
from spikesculpt.config import TrainConfig
from spikesculpt.core.distributed import DivergedError, check_identical, checksum, rank
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.evolution.evolution import run_evolution
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.lottery import run_lottery
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.train_run import run_training
from spikesculpt.train.distributed import init_from_env, shutdown
from spikesculpt.train.trainer import Trainer

GROWTH = ("random", "gradient", "hebbian")


def config(dataset: str, **kw) -> TrainConfig:
    """The test's tiny runs (dense: the same config as the one-process reference)."""
    base = {"dataset": dataset, "epochs": 2, "timesteps": 2, "batch_size": 50, "lr": 5e-3,
            "device": "cpu", "model_kwargs": {"hidden": [24]}}
    base.update(kw)
    return TrainConfig(**base)


def evolve_argv(dataset: str, out: Path) -> list[str]:
    """The test's tiny ``spikesculpt evolve``: a gene-encoded MLP (g = 3, no BatchNorm), 2
    candidates, 1 generation of 1 epoch, a final training of 2 epochs."""
    return ["evolve", "--dataset", dataset, "--population", "2", "--generations", "1",
            "--gene-dim", "3", "--eval-epochs", "1", "--epochs", "2", "--timesteps", "2",
            "--batch-size", "50", "--lr", "5e-3", "--model-arg", "hidden=[24]", "--device",
            "cpu", "--no-progress", "--out", str(out)]


def evolve_unsearched(dataset: str, out: Path) -> str:
    """What a distributed evolution with no search says (a ``UserError`` on every rank)."""
    try:
        run_evolution(config(dataset, method="genetic"),
                      EvolutionConfig(population=2, generations=1), out=str(out),
                      progress=False)
        return "accepted"
    except UserError as exc:
        return str(exc)


def evolve_final(dataset: str, out: Path) -> dict:
    """``spikesculpt evolve ... --resume`` on this rank (what ``--nproc`` starts) for the
    evolution in ``out``, searched by the test: the exit status, the trainings run here and a
    checksum of every tensor of this rank's final model. Last: the CLI ends the process group."""
    models = []
    fit = Trainer.fit
    Trainer.fit = lambda self, *a, **kw: (models.append(self.model), fit(self, *a, **kw))[1]
    try:
        status = cli_main([*evolve_argv(dataset, out), "--resume"])
    finally:
        Trainer.fit = fit
    return {"status": status, "fits": len(models),
            "weights": {n: checksum(t).tolist() for n, t in models[-1].state_dict().items()}}


def counting(calls: list, fn):
    def wrapped(*args, **kwargs):
        calls.append(args[-1] if isinstance(args[-1], str) else "")
        return fn(*args, **kwargs)
    return wrapped


def main(dataset: str, out: Path) -> None:
    torch.set_num_threads(1)
    init_from_env()
    checks, replaced = [], []
    sparse_base.check_identical = counting(checks, sparse_base.check_identical)
    lottery_context.check_identical = counting(checks, lottery_context.check_identical)
    io_module.os.replace = counting(replaced, os.replace)
    report = {"rank": rank(), "runs": {}}

    dense = run_training(config(dataset), out=str(out / "dense"), progress=False)
    report["runs"]["dense"] = dense.metrics
    for grow in GROWTH:
        cfg = config(dataset, method="esl")
        cfg.sparse.grow, cfg.sparse.update_every, cfg.sparse.density = grow, 2, 0.2
        result = run_training(cfg, out=str(out / f"esl-{grow}"), progress=False)
        report["runs"][f"esl-{grow}"] = result.metrics
    lottery = run_lottery(config(dataset, epochs=1), LotteryConfig(rounds=2, rate=0.5,
                                                                   rewind="2it"),
                          out=str(out / "imp"), progress=False)
    report["runs"]["imp"] = lottery.summary
    report["evolve_unsearched"] = evolve_unsearched(dataset, out / "unsearched")
    try:  # SyncBatchNorm runs on CUDA only: a one-line error on every rank, nothing written
        run_training(config(dataset, sync_bn=True), out=str(out / "syncbn"), progress=False)
        report["sync_bn_on_cpu"] = "accepted"
    except UserError as exc:
        report["sync_bn_on_cpu"] = str(exc)
    report["mask_checks"] = len(checks)
    report["replaced"] = len(replaced)
    # the check itself: different masks on the two ranks must be refused
    mask = torch.zeros(10, dtype=torch.bool)
    mask[rank()] = True
    try:
        check_identical({"w": mask}, "deliberately different")
        report["divergence_caught"] = False
    except DivergedError as exc:
        report["divergence_caught"] = str(exc)
    report["evolve"] = evolve_final(dataset, out / "evolve")
    shutdown(finished=True)  # (already done by the CLI)
    with open(out / f"rank{report['rank']}.json", "w") as fh:
        json.dump(report, fh, default=str)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
