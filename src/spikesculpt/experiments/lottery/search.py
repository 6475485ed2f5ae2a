"""``LotterySearch``: the run of a ticket search — its directory, hash, resume, which levels and
controls still need running, and the summary. Each level is run by the strategy
(``base.Strategy.run_level``) through a ``LevelContext`` (``context.py``); the files of the
directory are written by ``store.py``.

Directory (``--out DIR``, default ``runs/lottery-<strategy>-<model>-<dataset>-<hash>``)::

    config.yaml               both configs (training + search) and the hash naming the search
                              (``experiments/rundir.py``; older searches: lottery.yaml)
    rewind.pt                 the rewind snapshot (IMP / early-bird): weights, BN statistics,
                              optimizer and scheduler state at iteration k
    early_time.json           --early-time: KL table and the chosen T'
    level_K/                  K = 0 (dense) .. rounds
      mask.safetensors        the level's mask (packed bits, keyed by parameter name)
      model.safetensors       the trained ticket (best validation; zeros in place)
      history.csv             per epoch of the ticket's training
      search.json             how the next level's mask was found (epochs, seconds, T', ...)
      next_mask.safetensors   that mask (IMP / early-bird)
      metrics.json            the level's numbers; written last: the level is finished
      checkpoint_<phase>.pt   while a training of the level runs (resume mid-level)
      control_reinit/, control_random/   the controls' model, mask, history, metrics.json
    summary.json              {"levels": [{"level", "density", "test_accuracy", "val_accuracy",
                              ...}], "controls": {kind: [...]}, ...}; written last
    accuracy_vs_density.png   test accuracy against density: levels, controls, dense

Resume: a finished level (its ``metrics.json``) is never recomputed; an interrupted one restarts
from its last epoch checkpoint (or from its start), and since every random stream is seeded,
the result equals an uninterrupted search. A directory holding another config's search is
refused; one holding an interrupted search of this config needs ``--resume``. The controls are
not part of the hash: the same command with ``--controls`` adds them to a finished search.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from spikesculpt.config import TrainConfig, digest
from spikesculpt.core.distributed import from_main
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.experiments.lottery.context import LevelContext, SearchSetup
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.lottery.registry import STRATEGIES
from spikesculpt.experiments.lottery.report import plot_accuracy_vs_density, search_summary
from spikesculpt.experiments.lottery.store import SearchStore, read_json
from spikesculpt.experiments.rundir import RunDir, dataset_slug, hashed_train_config
from spikesculpt.experiments.train_run import build_model
from spikesculpt.methods.tickets.patch import check_patch_keep_option
from spikesculpt.methods.tickets.pruning import ticket_layers
from spikesculpt.methods.tickets.snapshot import rewind_step


def lottery_hash(train: TrainConfig, lottery: LotteryConfig) -> str:
    """The hash naming a search: both configs' hashed fields."""
    return digest({"train": hashed_train_config(train), "lottery": lottery.hashed_dict()})


@dataclass
class LotteryResult:
    path: Path
    summary: dict
    status: str                  # "searched" | "resumed" | "already-finished"


def strategies_allowing(flag: str) -> str:
    """"imp and early-bird": the registered strategies whose ``flag`` attribute is true."""
    names = [n for n in STRATEGIES.names() if getattr(STRATEGIES.get(n), flag, False)]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


class LotterySearch:
    def __init__(self, train: TrainConfig, lottery: LotteryConfig, out: Optional[str] = None,
                 runs_root: str = "runs", resume: bool = False, progress: bool = True):
        self.train = copy.deepcopy(train).validate()
        self.train.method = "dense"          # the ticket's mask is the search's own
        self.lottery = copy.deepcopy(lottery).validate()
        self.strategy = STRATEGIES.get(self.lottery.strategy)()
        check_patch_keep_option(self.train.model, self.train.model_kwargs)
        for option, flag, allowed in (("early_time", "--early-time", "allows_early_time"),
                                      ("binary_weights", "--binary-weights", "allows_binary")):
            if getattr(self.lottery, option) and not getattr(self.strategy, allowed):
                raise UserError(f"{flag} applies to the {strategies_allowing(allowed)} "
                                f"strategies, not {self.lottery.strategy!r}")
        self.digest = lottery_hash(self.train, self.lottery)
        if out:
            self.path = Path(out)
        else:
            self.path = Path(runs_root) / (f"lottery-{self.lottery.strategy}-{self.train.model}-"
                                           f"{dataset_slug(self.train.dataset)}-{self.digest}")
        self.run_dir = RunDir(self.path, "lottery")
        self.store = SearchStore(self.path)
        self.resume = resume
        self.progress = progress
        self.setup: Optional[SearchSetup] = None

    @property
    def rounds(self) -> int:
        return self.lottery.rounds

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> str:
        """Check everything a user can get wrong, before writing anything; return the action."""
        action = self._check_dir()
        cfg = self.train
        splits = load_dataset(cfg.dataset, seed=cfg.seed, val_fraction=cfg.val_fraction,
                              data_root=cfg.data_root, timesteps=cfg.timesteps)
        model = build_model(cfg, splits.info)
        steps_per_epoch = -(-len(splits.train) // cfg.batch_size)
        self.setup = SearchSetup(
            train=self.train, lottery=self.lottery, splits=splits,
            layers=ticket_layers(model, self.lottery.dense_first, self.lottery.dense_last),
            steps_per_epoch=steps_per_epoch,
            rewind_step=rewind_step(self.lottery.rewind, steps_per_epoch, cfg.epochs)
            if self.strategy.uses_rewind else 0,
            store=self.store, progress=self.progress,
            model_metadata={"config_hash": self.digest, "model": cfg.model,
                            "strategy": self.lottery.strategy})
        self.strategy.check(self.context(0), model)
        return action

    def context(self, level: int, control: Optional[str] = None) -> LevelContext:
        """What the strategy sees while it runs ``level`` (or its ``control``)."""
        return LevelContext(self.setup, level, self.strategy.ticket_start(level), control)

    def _check_dir(self) -> str:
        """The run directory's rules (``RunDir.check``); finished levels are kept either way."""
        return self.run_dir.check(self.digest, self.resume, in_progress=self._interrupted(),
                                  complete=self._controls_done)

    def _controls_done(self, summary: dict) -> bool:
        return all(kind in summary.get("controls", {}) for kind in self.lottery.controls)

    def _interrupted(self) -> bool:
        for folder in self.path.glob("level_*"):
            if not (folder / "metrics.json").is_file() or any(folder.glob("checkpoint_*.pt")):
                return True
            for control in folder.glob("control_*"):
                if not (control / "metrics.json").is_file():
                    return True
        return False

    # ------------------------------------------------------------------ the search
    def run(self) -> LotteryResult:
        self._prepare()
        if self._finished():
            return self._already_finished()
        with self.run_dir.lock():  # one writer at a time; checked again under the lock
            # distributed: rank 0 (the lock holder) decides for every rank
            action = from_main(self._check_dir)
            if self._finished():
                return self._already_finished()
            return self._run_locked(action)

    def _already_finished(self) -> LotteryResult:
        return LotteryResult(self.path, read_json(self.path / "summary.json"), "already-finished")

    def _run_locked(self, action: str) -> LotteryResult:
        if action == "fresh":
            self.run_dir.start(self.digest, {"train": self.train.to_dict(),
                                             "lottery": self.lottery.hashed_dict()})
        for level in range(self.rounds + 1):
            if not self.store.level_done(level):
                self.strategy.run_level(self.context(level))
        for kind in self.lottery.controls:
            for level in self.control_levels():
                ctx = self.context(level, control=kind)
                if not (ctx.folder / "metrics.json").is_file():
                    self.strategy.control(ctx)
        summary = self.summary()
        plot_accuracy_vs_density(summary, self.path / "accuracy_vs_density.png")
        self.run_dir.write_result(summary)  # last: marks the search finished
        return LotteryResult(self.path, summary, "resumed" if action == "resume" else "searched")

    def control_levels(self) -> list[int]:
        """Pruned levels with a measured ticket (1..rounds; with --evaluate ends, the last)."""
        return [k for k in range(1, self.rounds + 1) if self.context(k).evaluates]

    def _finished(self) -> bool:
        return self.run_dir.is_finished(self._controls_done) and \
            all(self.store.level_done(k) for k in range(self.rounds + 1))

    def summary(self) -> dict:
        rewind = self.setup.rewind_step if self.strategy.uses_rewind else None
        return search_summary(self.store, self.train, self.lottery, self.digest, rewind)


def run_lottery(train: TrainConfig, lottery: LotteryConfig, out: Optional[str] = None,
                runs_root: str = "runs", resume: bool = False,
                progress: bool = True) -> LotteryResult:
    """Run (or resume, or extend with controls) a ticket search; see ``LotterySearch``."""
    return LotterySearch(train, lottery, out, runs_root, resume, progress).run()
