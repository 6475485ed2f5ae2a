"""``LotterySearch``: the levels of a ticket search, their storage, resume and summary.

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
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from spikesculpt.config import TrainConfig, digest
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write, write_csv, write_json
from spikesculpt.core.version import __version__
from spikesculpt.data import load_dataset
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.lottery.registry import STRATEGIES
from spikesculpt.experiments.lottery.report import plot_accuracy_vs_density
from spikesculpt.experiments.rundir import (
    RunDir,
    dataset_slug,
    hashed_train_config,
)
from spikesculpt.experiments.train_run import build_model, save_model
from spikesculpt.methods.tickets.patch import check_patch_keep_option, tokens_kept
from spikesculpt.methods.tickets.pruning import (
    full_mask,
    layer_density,
    model_density,
    ticket_layers,
)
from spikesculpt.methods.tickets.snapshot import Snapshot, rewind_step
from spikesculpt.methods.tickets.ticket import StopPhase, TicketCallback
from spikesculpt.sparse import Mask
from spikesculpt.train.trainer import Trainer

LEVEL_KEYS = ("level", "density", "sparsity", "test_accuracy", "val_accuracy", "test_loss",
              "best_epoch", "firing_rate", "train_seconds", "timesteps", "tokens_kept")


def lottery_hash(train: TrainConfig, lottery: LotteryConfig) -> str:
    """The hash naming a search: both configs' hashed fields."""
    return digest({"train": hashed_train_config(train), "lottery": lottery.hashed_dict()})


@dataclass
class Phase:
    trainer: Trainer
    metrics: Optional[dict]      # None when a search-only run stopped early
    clock: object


@dataclass
class LotteryResult:
    path: Path
    summary: dict
    status: str                  # "searched" | "resumed" | "already-finished"


class LotterySearch:
    def __init__(self, train: TrainConfig, lottery: LotteryConfig, out: Optional[str] = None,
                 runs_root: str = "runs", resume: bool = False, progress: bool = True):
        self.train = copy.deepcopy(train).validate()
        self.train.method = "dense"          # the ticket's mask is the search's own
        self.lottery = copy.deepcopy(lottery).validate()
        self.strategy = STRATEGIES.get(self.lottery.strategy)()
        check_patch_keep_option(self.train.model, self.train.model_kwargs)
        if self.lottery.early_time and not self.strategy.allows_early_time:
            raise UserError(f"--early-time applies to the imp and early-bird strategies, not "
                            f"{self.lottery.strategy!r}")
        if self.lottery.binary_weights and not self.strategy.allows_binary:
            raise UserError(f"--binary-weights applies to the score and multilevel strategies, "
                            f"not {self.lottery.strategy!r}")
        self.digest = lottery_hash(self.train, self.lottery)
        if out:
            self.path = Path(out)
        else:
            self.path = Path(runs_root) / (f"lottery-{self.lottery.strategy}-{self.train.model}-"
                                           f"{dataset_slug(self.train.dataset)}-{self.digest}")
        self.run_dir = RunDir(self.path, "lottery")
        self.resume = resume
        self.progress = progress
        self._snapshot: Optional[Snapshot] = None
        self.splits = None
        self.layers: list[str] = []
        self.steps_per_epoch = 0
        self.rewind_step = 0

    # ------------------------------------------------------------------ set-up
    @property
    def rounds(self) -> int:
        return self.lottery.rounds

    def target_density(self, level: int) -> float:
        return (1.0 - self.lottery.rate) ** level

    def _prepare(self) -> str:
        """Check everything a user can get wrong, before writing anything; return the action."""
        action = self._check_dir()
        cfg = self.train
        self.splits = load_dataset(cfg.dataset, seed=cfg.seed, val_fraction=cfg.val_fraction,
                                   data_root=cfg.data_root, timesteps=cfg.timesteps)
        model = self.build_model(cfg)
        self.layers = ticket_layers(model, self.lottery.dense_first, self.lottery.dense_last)
        self.steps_per_epoch = -(-len(self.splits.train) // cfg.batch_size)
        if self.strategy.uses_rewind:
            self.rewind_step = rewind_step(self.lottery.rewind, self.steps_per_epoch, cfg.epochs)
        self.strategy.check(self, model)
        return action

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

    def build_model(self, config: TrainConfig, init_seed: Optional[int] = None):
        """The model of ``config`` initialised from its seed (or ``init_seed``)."""

        if init_seed is not None:
            config = copy.deepcopy(config)
            config.seed = int(init_seed)
        return build_model(config, self.splits.info)

    # ------------------------------------------------------------------ paths and files
    def level_dir(self, level: int) -> Path:
        return self.path / f"level_{level}"

    def level_done(self, level: int) -> bool:
        return (self.level_dir(level) / "metrics.json").is_file()

    def search_done(self, level: int) -> bool:
        return (self.level_dir(level) / "search.json").is_file()

    def evaluates(self, level: int) -> bool:
        return self.lottery.evaluate == "all" or level in (0, self.rounds)

    @staticmethod
    def write_json(path: Path, data) -> None:
        write_json(path, data)

    @staticmethod
    def read_json(path: Path) -> dict:
        try:
            return json.loads(Path(path).read_text())
        except (OSError, ValueError):
            raise UserError(f"cannot read {path}; it is corrupt — remove the level folder to "
                            f"recompute it") from None

    def level_mask(self, level: int, model) -> Mask:
        """Level 0: every connection; level K: the mask found by level K-1's search."""
        if level == 0:
            return full_mask(model, self.layers)
        return Mask.load(self.level_dir(level - 1) / "next_mask.safetensors").validate(model)

    def save_search(self, level: int, mask: Mask, info: dict) -> None:
        folder = self.level_dir(level)
        mask.save(folder / "next_mask.safetensors")
        write_json(folder / "search.json", {**info, "next_density": mask.density()})

    def save_snapshot(self, snapshot: Snapshot) -> None:
        snapshot.save(self.path / "rewind.pt")
        self._snapshot = snapshot

    def stored_snapshot(self) -> Optional[Snapshot]:
        path = self.path / "rewind.pt"
        if self._snapshot is None and path.is_file():
            self._snapshot = Snapshot.load(path)
        return self._snapshot

    def snapshot(self) -> Snapshot:
        found = self.stored_snapshot()
        if found is None:
            raise UserError(f"{self.path} has no rewind snapshot (rewind.pt); remove the search "
                            f"directory and start again")
        return found

    def save_early_time(self, info: dict) -> None:
        write_json(self.path / "early_time.json", info)

    def early_time_info(self) -> Optional[dict]:
        path = self.path / "early_time.json"
        return self.read_json(path) if path.is_file() else None

    def search_config(self, level: int) -> TrainConfig:
        """The training config of a search run: T' after level 0 with --early-time."""
        config = copy.deepcopy(self.train)
        if self.lottery.early_time and level > 0:
            info = self.early_time_info()
            if info is None:
                raise UserError(f"{self.path} lacks early_time.json; remove the search directory "
                                f"and start again")
            config.timesteps = int(info["timesteps"])
        return config

    # ------------------------------------------------------------------ training
    def train_phase(self, folder: Path, name: str, config: TrainConfig, model, mask: Optional[Mask],
                    start: str, callbacks: list, clock) -> Phase:
        """Train ``model`` (``mask`` enforced) from ``start`` ("init" or "rewind"), with an
        epoch checkpoint ``folder/checkpoint_<name>.pt`` that a rerun resumes from."""
        folder.mkdir(parents=True, exist_ok=True)
        ticket = TicketCallback(mask)
        trainer = Trainer(model, self.splits, config, [ticket, *callbacks, clock],
                          progress=self.progress)
        ckpt = folder / f"checkpoint_{name}.pt"
        if ckpt.is_file():
            try:
                state = torch.load(ckpt, map_location=trainer.device, weights_only=True)
                trainer.load_state_dict(state)
            except Exception as exc:
                raise UserError(f"cannot resume from {ckpt}: {type(exc).__name__}; remove it to "
                                f"restart the level") from None
        elif start == "rewind":
            self.snapshot().restore(trainer, ticket.enforcer)

        def save(t: Trainer) -> None:
            atomic_write(ckpt, lambda tmp: torch.save(t.state_dict(), tmp))

        try:
            metrics = trainer.fit(on_epoch_done=save)
        except StopPhase:
            metrics = None
        ckpt.unlink(missing_ok=True)
        return Phase(trainer, metrics, clock)

    # ------------------------------------------------------------------ outputs
    def write_run(self, folder: Path, mask: Mask, model, phase: Optional[Phase],
                  extra: dict) -> dict:
        """mask, model, history and metrics.json (last) of one trained ticket or control."""

        folder.mkdir(parents=True, exist_ok=True)
        mask.save(folder / "mask.safetensors")
        density = model_density(model, mask)
        entry = {**extra, "density": density, "sparsity": 1.0 - density,
                 "layer_density": layer_density(model, mask),
                 "empty_layers": [n for n in mask if mask.active(n) == 0],
                 "test_accuracy": None, "val_accuracy": None}
        if phase is not None and phase.metrics is not None:
            m = phase.metrics
            save_model(folder / "model.safetensors", model,
                       {"config_hash": self.digest, "model": self.train.model,
                        "strategy": self.lottery.strategy, "density": density})
            write_csv(folder / "history.csv", phase.trainer.history)
            entry.update({k: m[k] for k in ("test_accuracy", "val_accuracy", "test_loss",
                                            "best_epoch", "firing_rate", "layer_firing_rates",
                                            "train_seconds")})
            entry["timesteps"] = phase.trainer.config.timesteps
            kept = tokens_kept(model)
            if kept is not None:
                entry["tokens_kept"] = kept
        write_json(folder / "metrics.json", entry)
        return entry

    def write_level(self, level: int, mask: Mask, model, phase: Optional[Phase],
                    search_info: Optional[dict] = None, extra: Optional[dict] = None) -> dict:
        folder = self.level_dir(level)
        if search_info is None and self.search_done(level):
            search_info = self.read_json(folder / "search.json")
        info = {"level": level, "target_density": self.target_density(level),
                "start": self.strategy.ticket_start(level), "search": search_info,
                **(extra or {})}
        return self.write_run(folder, mask, model, phase, info)

    # ------------------------------------------------------------------ the search
    def run(self) -> LotteryResult:
        action = self._prepare()
        if self._finished():
            return LotteryResult(self.path, self.read_json(self.path / "summary.json"),
                                 "already-finished")
        with self.run_dir.lock():  # one writer at a time; checked again under the lock
            action = self._check_dir()
            if self._finished():
                return LotteryResult(self.path, self.read_json(self.path / "summary.json"),
                                     "already-finished")
            return self._run_locked(action)

    def _run_locked(self, action: str) -> LotteryResult:
        if action == "fresh":
            self.run_dir.start(self.digest, {"train": self.train.to_dict(),
                                             "lottery": self.lottery.hashed_dict()})
        for level in range(self.rounds + 1):
            if not self.level_done(level):
                self.strategy.run_level(self, level)
        for kind in self.lottery.controls:
            for level in self.control_levels():
                folder = self.level_dir(level) / f"control_{kind}"
                if not (folder / "metrics.json").is_file():
                    self.strategy.control(self, kind, level, folder)
        summary = self.summary()

        plot_accuracy_vs_density(summary, self.path / "accuracy_vs_density.png")
        self.run_dir.write_result(summary)  # last: marks the search finished
        return LotteryResult(self.path, summary, "resumed" if action == "resume" else "searched")

    def control_levels(self) -> list[int]:
        """Pruned levels with a measured ticket (1..rounds; with --evaluate ends, the last)."""
        return [k for k in range(1, self.rounds + 1) if self.evaluates(k)]

    def _finished(self) -> bool:
        return self.run_dir.is_finished(self._controls_done) and \
            all(self.level_done(k) for k in range(self.rounds + 1))

    def summary(self) -> dict:
        levels = [self.read_json(self.level_dir(k) / "metrics.json")
                  for k in range(self.rounds + 1)]
        rows = []
        for m in levels:
            row = {k: m.get(k) for k in LEVEL_KEYS if k in m}
            search = m.get("search") or {}
            row["search_seconds"] = search.get("seconds")
            row["search_cpu_seconds"] = search.get("cpu_seconds")
            for key in ("embedding_density", "patch_keep", "empty_layers"):
                if key in m:
                    row[key] = m[key]
            rows.append(row)
        controls = {}
        for kind in LotteryConfig.CONTROLS:
            found = []
            for k in range(1, self.rounds + 1):
                path = self.level_dir(k) / f"control_{kind}" / "metrics.json"
                if path.is_file():
                    m = self.read_json(path)
                    found.append({key: m.get(key) for key in ("level", "density", "sparsity",
                                                              "test_accuracy", "val_accuracy")})
            if found:
                controls[kind] = found
        search_seconds = sum(r["search_seconds"] or 0.0 for r in rows)
        search_cpu = sum(r["search_cpu_seconds"] or 0.0 for r in rows)
        return {
            "strategy": self.lottery.strategy, "config_hash": self.digest,
            "model": self.train.model, "dataset": self.train.dataset, "seed": self.train.seed,
            "epochs": self.train.epochs, "timesteps": self.train.timesteps,
            "rounds": self.rounds, "rate": self.lottery.rate, "prune": self.lottery.prune,
            "rewind": self.lottery.rewind if self.strategy.uses_rewind else None,
            "rewind_step": self.rewind_step if self.strategy.uses_rewind else None,
            "early_time": self.early_time_info(),
            "dense_test_accuracy": rows[0]["test_accuracy"],
            "search_seconds": search_seconds, "search_cpu_seconds": search_cpu,
            "levels": rows, "controls": controls,
            "torch": torch.__version__, "spikesculpt": __version__,
            "python": platform.python_version(),
        }


def run_lottery(train: TrainConfig, lottery: LotteryConfig, out: Optional[str] = None,
                runs_root: str = "runs", resume: bool = False,
                progress: bool = True) -> LotteryResult:
    """Run (or resume, or extend with controls) a ticket search; see ``LotterySearch``."""
    return LotterySearch(train, lottery, out, runs_root, resume, progress).run()
