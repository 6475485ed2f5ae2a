"""Typed run configuration. YAML files and command-line flags are overlays on these dataclasses.

``TrainConfig`` composes the option sections that each part declares itself: ``NeuronConfig``
(``neurons/options.py``), ``SparseConfig`` (``methods/dynamic/options.py``), ``GeneticConfig``
(``methods/genetic/options.py``), ``TicketConfig`` (``methods/tickets/options.py``). The
lottery and evolution options live with their runs (``experiments/lottery/options.py``,
``experiments/evolution/options.py``).

The run directory is named by :func:`config_hash`, a hash of every field that can change the
result (device and bookkeeping fields are left out), so the same config always lands in the same
place: re-running a finished config is a no-op and an interrupted one can be resumed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from spikesculpt.core.checks import require_finite
from spikesculpt.core.errors import UserError
from spikesculpt.core.options import (
    check_choices,
    hashed_if_set,
    option,
    overlay_dataclass,
    positive_int,
    unhashed_fields,
)
from spikesculpt.data.augment import parse_augment
from spikesculpt.encoding import static_encoders
from spikesculpt.methods.dynamic.options import SparseConfig
from spikesculpt.methods.genetic.options import GeneticConfig
from spikesculpt.methods.registry import METHODS
from spikesculpt.models import MODELS
from spikesculpt.methods.tickets.options import TicketConfig
from spikesculpt.neurons.options import NeuronConfig
from spikesculpt.train.compiled import COMPILE_MODES
from spikesculpt.train.losses import LOSSES
from spikesculpt.train.optim import OPTIMIZERS, SCHEDULES

MAX_SEED = 2**32 - 1  # numpy's and many libraries' limit; torch's generators take it too


@dataclass
class TrainConfig:
    """Everything that defines one training run."""

    dataset: str = option("digits", help="digits, npz:PATH, ... (spikesculpt list datasets)")
    model: str = option("mlp", choices=MODELS.names, kind="model", help="network")
    model_kwargs: dict = field(default_factory=dict)   # extra model arguments (e.g. hidden, width)
    method: str = option("dense", choices=METHODS.names, kind="method", help="training method")
    epochs: int = option(30, parse=positive_int, help="training epochs")
    timesteps: int = option(4, parse=positive_int, help="simulation time steps T")
    batch_size: int = option(64, parse=positive_int, help="batch size")
    lr: float = option(1e-3, help="learning rate")
    optimizer: str = option("adam", choices=OPTIMIZERS.names, help="optimizer")
    momentum: float = option(0.9, help="SGD momentum (sgd only)")
    weight_decay: float = option(0.0, help="weight decay")
    schedule: str = option("cosine", choices=SCHEDULES.names, help="per-epoch lr schedule")
    loss: str = option("ce", choices=lambda: sorted(LOSSES),
                       help="loss (ce: on the time-averaged output; tet: Deng et al. 2022)")
    encoding: str = option("direct", choices=static_encoders, kind="encoding",
                           help="input encoding of static data")
    augment: str = option("none", hash="if_set",
                          help="training-batch augmentation: none | standard (flip+shift) | "
                               "flip, shift, cutout joined with +")
    init_firing: float = option(0.1, hash="if_set",
                                help="dense and sparse methods: before training, scale up the "
                                     "Linear/Conv layers whose neurons fire below this rate "
                                     "(0 = off)")
    val_fraction: float = option(0.1, help="fraction of train held out for validation")
    seed: int = option(0, help="random seed")
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    # Method option sections: a method names the one it reads (``Method.config_section``); only
    # that section is part of the run's hash, so e.g. --density does not rename a dense run.
    sparse: SparseConfig = field(default_factory=SparseConfig, metadata={"method_options": True})
    genetic: GeneticConfig = field(default_factory=GeneticConfig,
                                   metadata={"method_options": True})
    ticket: TicketConfig = field(default_factory=TicketConfig, metadata={"method_options": True})
    # Bookkeeping: not part of the hash.
    device: str = option("auto", hash="never", help="auto | cpu | cuda | cuda:N")
    amp: bool = option(False, hash="never", help="mixed precision (CUDA)")
    compile: str = option("none", hash="never", choices=lambda: COMPILE_MODES, kind="compile mode",
                          help="torch.compile the training forward/backward: none | default | "
                               "reduce-overhead (+ CUDA graphs) | max-autotune "
                               "(train/compiled.py)")
    sync_bn: bool = option(False, hash="if_set",
                           help="distributed runs on GPUs: BatchNorm statistics over the global "
                                "batch (SyncBatchNorm; docs/distributed.md)")
    data_root: Optional[str] = option(None, hash="never", none_means="none",
                                      help="folder with downloaded datasets")
    download: bool = option(False, hash="never",
                            help="fetch missing torchvision datasets (mnist, cifar10, ...) into "
                                 "--data-root")

    def validate(self) -> "TrainConfig":
        for name in ("epochs", "timesteps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"{name} must be a positive integer, got {value!r}; "
                                f"pass e.g. --{name.replace('_', '-')} 10")
        for name, example in (("lr", "--lr 1e-3"), ("momentum", "--momentum 0.9"),
                              ("weight_decay", "--weight-decay 5e-4"),
                              ("val_fraction", "--val-fraction 0.1")):
            require_finite(name, getattr(self, name), example)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"seed must be an integer in 0..{MAX_SEED}, got {self.seed!r}; pass "
                            f"e.g. --seed 0")
        if not self.lr > 0:
            raise UserError(f"lr must be > 0, got {self.lr!r}; pass e.g. --lr 1e-3")
        if not 0 <= self.momentum < 1:
            raise UserError(f"momentum must be in [0, 1) (SGD's β), got {self.momentum!r}; pass "
                            f"e.g. --momentum 0.9")
        if self.weight_decay < 0:
            raise UserError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        check_choices(self)
        if isinstance(self.init_firing, bool) or not 0 <= self.init_firing < 1:
            raise UserError(f"init_firing must be in [0, 1) (a firing rate; 0 = off), got "
                            f"{self.init_firing!r}; pass e.g. --init-firing 0.1")
        self.sparse.validate()
        self.genetic.validate()
        self.ticket.validate()
        parse_augment(self.augment)  # UserError for unknown ops
        self.neuron.validate()
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def option_sections(cls) -> tuple[str, ...]:
        """The fields that hold a method's options (``sparse``, ``genetic``)."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("method_options"))

    def hashed_dict(self, method_section: Optional[str]) -> dict:
        """The fields that can change the result: all but the bookkeeping ones, and of the
        method option sections only ``method_section`` (the one the method declares it reads,
        ``Method.config_section``; None for a method without options), less the fields that
        section declares ``hash="never"`` (e.g. the ticket's mask path) and those it declares
        ``hash="if_set"`` while at their default (an option added later keeps the old names)."""
        sections = self.option_sections()
        if method_section is not None and method_section not in sections:
            raise ValueError(f"method {self.method!r} declares config section "
                             f"{method_section!r}, which TrainConfig does not have "
                             f"(sections: {', '.join(sections)})")
        d = self.to_dict()
        for name in unhashed_fields(self):
            d.pop(name, None)
        for section in sections:
            if section != method_section:
                d.pop(section, None)
        if method_section is not None:  # a section may leave fields out (e.g. a file's path)
            section_cls = type(getattr(self, method_section))
            for name in unhashed_fields(section_cls):
                d[method_section].pop(name, None)
            for name, default in hashed_if_set(section_cls).items():
                if d[method_section].get(name) == default:
                    d[method_section].pop(name, None)
        for name, default in hashed_if_set(self).items():
            if d.get(name) == default:
                d.pop(name, None)
        return d


def digest(values: dict) -> str:
    """First 10 hex digits of the SHA-256 of the canonical JSON of ``values`` (names runs)."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def overlay(config: TrainConfig, values: dict, where: str = "overrides") -> TrainConfig:
    """Apply a (possibly nested) mapping of values on top of ``config`` in place."""
    return overlay_dataclass(config, values, where)


def from_dict(values: dict, where: str = "config") -> TrainConfig:
    return overlay(TrainConfig(), values, where)


