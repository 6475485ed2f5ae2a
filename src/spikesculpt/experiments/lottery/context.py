"""``LevelContext``: all a strategy sees of the search while it runs one level (or one control).

A strategy (``base.Strategy``) never holds the ``LotterySearch``: the search hands it one
``LevelContext`` per level, and the strategy finds and trains the level's ticket with it:

==========================  ===================================================================
what                        members
==========================  ===================================================================
the level                   ``level``, ``target_density`` = (1 - rate)^level, ``evaluates``
                            (is the ticket trained to the end?), ``start`` ("init"/"rewind"),
                            ``folder`` (its outputs), ``level_folder``, ``control`` (kind or
                            None)
the run's settings          ``train`` (TrainConfig of every level; read, do not change),
                            ``lottery`` (LotteryConfig), ``info`` (the dataset's DatasetInfo),
                            ``layers`` (prunable weights the search may prune),
                            ``rewind_step``, ``steps_per_epoch``
build a model               ``build_model(config=None, init_seed=None)``
the level's mask            ``mask(model)``: level 0 dense, level K the mask of level K-1's search
train a phase               ``train_phase(name, model, mask, start, callbacks, clock, config)``
save search results         ``search_done()``, ``save_search(mask, info)``, ``search_config()``
                            (T' with --early-time); the rewind snapshot and the early-time
                            table: ``save_snapshot``, ``stored_snapshot``, ``save_early_time``;
                            a strategy's own files: ``write_json`` / ``read_json``
write the level             ``write(mask, model, phase, search_info, extra)``
==========================  ===================================================================

The run itself — run directory, hash, resume, which levels and controls still need running,
the summary — stays with ``LotterySearch``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

from spikesculpt.config import TrainConfig
from spikesculpt.core.distributed import check_identical, checks_enabled
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import write_json
from spikesculpt.data.base import DatasetInfo
from spikesculpt.experiments.lottery.options import LotteryConfig
from spikesculpt.experiments.lottery.phase import Phase, train_phase
from spikesculpt.experiments.lottery.store import SearchStore, read_json, write_run
from spikesculpt.experiments.train_run import build_model
from spikesculpt.methods.tickets.pruning import full_mask
from spikesculpt.methods.tickets.snapshot import Snapshot
from spikesculpt.methods.tickets.ticket import PhaseClock
from spikesculpt.sparse import Mask


@dataclass
class SearchSetup:
    """What every level of one search shares, fixed once the search is prepared."""

    train: TrainConfig
    lottery: LotteryConfig
    splits: object               # data.DataSplits
    layers: list[str]
    steps_per_epoch: int
    rewind_step: int
    store: SearchStore
    model_metadata: dict         # recorded in every saved model.safetensors
    progress: bool = True


class LevelContext:
    """The narrow interface of one level (module doc); ``control``: that control's branch."""

    def __init__(self, setup: SearchSetup, level: int, start: str,
                 control: Optional[str] = None):
        self._setup = setup
        self._store = setup.store
        self.level = int(level)
        self.start = start
        self.control = control
        self.level_folder = self._store.level_dir(self.level)
        self.folder = self.level_folder / f"control_{control}" if control else self.level_folder

    # ------------------------------------------------------------------ settings
    @property
    def train(self) -> TrainConfig:
        return self._setup.train

    @property
    def lottery(self) -> LotteryConfig:
        return self._setup.lottery

    @property
    def info(self) -> DatasetInfo:
        return self._setup.splits.info

    @property
    def layers(self) -> list[str]:
        return self._setup.layers

    @property
    def rewind_step(self) -> int:
        return self._setup.rewind_step

    @property
    def steps_per_epoch(self) -> int:
        return self._setup.steps_per_epoch

    @property
    def target_density(self) -> float:
        return (1.0 - self.lottery.rate) ** self.level

    @property
    def evaluates(self) -> bool:
        """Whether this level's ticket is trained to the end (``--evaluate``)."""
        return self.lottery.evaluate == "all" or self.level in (0, self.lottery.rounds)

    # ------------------------------------------------------------------ models and masks
    def build_model(self, config: Optional[TrainConfig] = None, init_seed: Optional[int] = None):
        """The model of ``config`` (default: ``train``) initialised from its seed (or
        ``init_seed``)."""
        config = config if config is not None else self.train
        if init_seed is not None:
            config = copy.deepcopy(config)
            config.seed = int(init_seed)
        return build_model(config, self.info)

    def mask(self, model) -> Mask:
        """Level 0: every connection of ``layers``; level K: the mask found by level K-1's
        search, checked against ``model``."""
        if self.level == 0:
            return full_mask(model, self.layers)
        return self._store.next_mask(self.level - 1).validate(model)

    # ------------------------------------------------------------------ training
    def train_phase(self, name: str, model, mask: Optional[Mask], start: str = "init",
                    callbacks: tuple = (), clock: Optional[PhaseClock] = None,
                    config: Optional[TrainConfig] = None) -> Phase:
        """Train ``model`` with ``mask`` enforced from ``start`` ("init" or "rewind") with
        ``config`` (default: ``train``; copied), resumable from ``folder/checkpoint_<name>.pt``.
        ``clock`` (a ``PhaseClock``) times the epochs; put the same one in ``callbacks``' users.
        With ``--rescale`` the kept weights of BN-free layers start at the dense start's norm.
        """
        return train_phase(self.folder, name, config if config is not None else self.train,
                           model, mask, start, list(callbacks), clock or PhaseClock(),
                           self._setup.splits, self._setup.progress, self._store.snapshot,
                           rescale=self.lottery.rescale)

    # ------------------------------------------------------------------ search results
    def search_done(self) -> bool:
        return self._store.search_done(self.level)

    def save_search(self, mask: Mask, info: dict) -> None:
        """Store the next level's mask and how it was found (``search.json``)."""
        if checks_enabled():  # SPIKESCULPT_CHECK_MASKS=1: every rank found the same mask
            check_identical(dict(mask.items()), f"lottery level {self.level}: pruned mask")
        self._store.save_search(self.level, mask, info)

    def search_config(self) -> TrainConfig:
        """The training config of a search run: T' after level 0 with --early-time."""
        config = copy.deepcopy(self.train)
        if self.lottery.early_time and self.level > 0:
            info = self._store.early_time_info()
            if info is None:
                raise UserError(f"{self._store.path} lacks early_time.json; remove the search "
                                f"directory and start again")
            config.timesteps = int(info["timesteps"])
        return config

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._store.save_snapshot(snapshot)

    def stored_snapshot(self) -> Optional[Snapshot]:
        return self._store.stored_snapshot()

    def save_early_time(self, info: dict) -> None:
        self._store.save_early_time(info)

    def write_json(self, name: str, data) -> None:
        """A strategy's own file in the level's folder."""
        write_json(self.level_folder / name, data)

    def read_json(self, name: str) -> dict:
        return read_json(self.level_folder / name)

    # ------------------------------------------------------------------ outputs
    def write(self, mask: Mask, model, phase: Optional[Phase], search_info: Optional[dict] = None,
              extra: Optional[dict] = None) -> dict:
        """The level's (or control's) mask, model, history and metrics.json (written last:
        the level is finished). ``phase`` None: the ticket was not trained (``--evaluate
        ends``). ``search_info``: how the mask was found (default: the level's search.json)."""
        if self.control is not None:
            info = {"control": self.control, "level": self.level, **(extra or {})}
        else:
            if search_info is None and self.search_done():
                search_info = self.read_json("search.json")
            info = {"level": self.level, "target_density": self.target_density,
                    "start": self.start, "search": search_info, **(extra or {})}
        return write_run(self.folder, mask, model, phase, info, self._setup.model_metadata)
