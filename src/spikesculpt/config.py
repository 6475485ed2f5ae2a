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
from spikesculpt.core.options import overlay_dataclass
from spikesculpt.data.augment import parse_augment
from spikesculpt.methods.dynamic.options import SparseConfig
from spikesculpt.methods.genetic.options import GeneticConfig
from spikesculpt.methods.tickets.options import TicketConfig
from spikesculpt.neurons.options import NeuronConfig

MAX_SEED = 2**32 - 1  # numpy's and many libraries' limit; torch's generators take it too


@dataclass
class TrainConfig:
    """Everything that defines one training run."""

    dataset: str = "digits"
    model: str = "mlp"
    model_kwargs: dict = field(default_factory=dict)   # extra model arguments (e.g. hidden, width)
    method: str = "dense"
    epochs: int = 30
    timesteps: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"      # sgd | adam | adamw
    momentum: float = 0.9        # sgd only
    weight_decay: float = 0.0
    schedule: str = "cosine"     # cosine | constant
    loss: str = "ce"             # ce (on the time-averaged output) | tet (Deng et al. 2022)
    encoding: str = "direct"     # direct | poisson | latency (static data only)
    augment: str = "none"        # none | standard | flip+shift+cutout (data/augment.py)
    init_firing: float = 0.1     # dense/sparse methods: wake layers firing below this at init
    val_fraction: float = 0.1
    seed: int = 0
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    # Method option sections: a method names the one it reads (``Method.config_section``); only
    # that section is part of the run's hash, so e.g. --density does not rename a dense run.
    sparse: SparseConfig = field(default_factory=SparseConfig, metadata={"method_options": True})
    genetic: GeneticConfig = field(default_factory=GeneticConfig,
                                   metadata={"method_options": True})
    ticket: TicketConfig = field(default_factory=TicketConfig, metadata={"method_options": True})
    # Bookkeeping: not part of the hash.
    device: str = "auto"         # auto | cpu | cuda | cuda:N
    amp: bool = False            # mixed precision on CUDA
    data_root: Optional[str] = None
    download: bool = False       # let torchvision datasets fetch missing files into data_root

    NOT_HASHED = ("device", "amp", "data_root", "download")
    # Hashed only when set away from their default, so that adding them did not rename the run
    # directories of existing configs.
    HASHED_IF_SET = {"augment": "none", "init_firing": 0.1}

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
        for name, allowed in (("optimizer", ("sgd", "adam", "adamw")),
                              ("schedule", ("cosine", "constant")), ("loss", ("ce", "tet")),
                              ("encoding", ("direct", "poisson", "latency"))):
            if getattr(self, name) not in allowed:
                raise UserError(f"unknown {name} {getattr(self, name)!r}; choose one of: "
                                f"{', '.join(allowed)}")
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
        section lists in its ``NOT_HASHED``."""
        sections = self.option_sections()
        if method_section is not None and method_section not in sections:
            raise ValueError(f"method {self.method!r} declares config section "
                             f"{method_section!r}, which TrainConfig does not have "
                             f"(sections: {', '.join(sections)})")
        d = self.to_dict()
        for name in self.NOT_HASHED:
            d.pop(name, None)
        for section in sections:
            if section != method_section:
                d.pop(section, None)
        if method_section is not None:  # a section may leave fields out (e.g. a file's path)
            for name in getattr(getattr(self, method_section), "NOT_HASHED", ()):
                d[method_section].pop(name, None)
        for name, default in self.HASHED_IF_SET.items():
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


