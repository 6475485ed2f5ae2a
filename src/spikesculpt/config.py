"""Typed run configuration. YAML files and command-line flags are overlays on these dataclasses.

The run directory is named by :func:`config_hash`, a hash of every field that can change the
result (device and bookkeeping fields are left out), so the same config always lands in the same
place: re-running a finished config is a no-op and an interrupted one can be resumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from spikesculpt.errors import UserError

MAX_SEED = 2**32 - 1  # numpy's and many libraries' limit; torch's generators take it too


def require_finite(name: str, value, example: str) -> None:
    """``UserError`` unless ``value`` is a finite real number (not NaN, not ±inf, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value!r}; pass e.g. {example}")


@dataclass
class NeuronConfig:
    """Spiking neuron of every hidden layer (see ``spikesculpt.neurons``)."""

    name: str = "lif"            # lif | if | plif
    tau: float = 2.0             # membrane time constant, in time steps (lif; plif: initial tau)
    v_threshold: float = 1.0     # firing threshold
    v_reset: Optional[float] = 0.0  # hard-reset potential; None = soft reset (subtract threshold)
    detach_reset: bool = False   # cut the gradient through the reset
    surrogate: str = "atan"      # atan | sigmoid | triangle
    alpha: Optional[float] = None  # surrogate width; None = the surrogate's default

    def validate(self) -> "NeuronConfig":
        require_finite("neuron tau", self.tau, "--tau 2.0")
        if not self.tau > 0:
            raise UserError(f"neuron tau must be > 0, got {self.tau!r}; pass e.g. --tau 2.0")
        require_finite("v_threshold", self.v_threshold, "--v-threshold 1.0")
        if not self.v_threshold > 0:
            raise UserError(f"v_threshold must be > 0, got {self.v_threshold!r}; pass e.g. "
                            f"--v-threshold 1.0")
        if self.v_reset is not None:
            require_finite("v_reset", self.v_reset, "--v-reset 0.0")
        if self.alpha is not None:
            require_finite("surrogate alpha", self.alpha, "--surrogate-alpha 2.0")
            if not self.alpha > 0:
                raise UserError(f"surrogate alpha must be > 0, got {self.alpha!r}")
        return self

    def module_kwargs(self) -> dict:
        """Keyword arguments for ``create_neuron(self.name, **kwargs)``."""
        kw: dict[str, Any] = dict(v_threshold=self.v_threshold, v_reset=self.v_reset,
                                  detach_reset=self.detach_reset, surrogate=self.surrogate,
                                  alpha=self.alpha)
        if self.name == "lif":
            kw["tau"] = self.tau
        elif self.name == "plif":
            kw["init_tau"] = self.tau
        return kw


@dataclass
class SparseConfig:
    """Options of the sparse methods (``static``, ``set``, ``rigl``, ``esl``; see docs/methods.md).

    ``None`` means "the method's own default" (each method documents its defaults, e.g. ESL
    allocates layer densities Erdős–Rényi, RigL ERK), so the values stored in config.yaml are
    the ones the user chose; the resolved values are in metrics.json's ``method_params``.
    """

    density: float = 0.1                 # fraction of prunable weights kept, in (0, 1]
    init: Optional[str] = None           # layer densities: uniform | er | erk
    grow: Optional[str] = None           # regrowth: random | gradient | hebbian
    update_every: Optional[int] = None   # T_iter: optimizer steps between mask updates
    drop_fraction: Optional[float] = None  # alpha_0: fraction rewired at the first update
    update_until: Optional[float] = None   # updates stop at this fraction of training
    dense_first: bool = False            # keep the first prunable layer dense
    dense_last: bool = False             # keep the last prunable layer (readout) dense

    def validate(self) -> "SparseConfig":
        if isinstance(self.density, bool) or not (0 < self.density <= 1):
            raise UserError(f"density must be in (0, 1] (the fraction of connections kept), "
                            f"got {self.density!r}; pass e.g. --density 0.1")
        for name, allowed in (("init", ("uniform", "er", "erk")),
                              ("grow", ("random", "gradient", "hebbian"))):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise UserError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
        if self.update_every is not None and (isinstance(self.update_every, bool)
                                              or self.update_every <= 0):
            raise UserError(f"update_every must be a positive number of steps, got "
                            f"{self.update_every!r}; pass e.g. --update-every 100")
        if self.drop_fraction is not None and not 0 <= self.drop_fraction < 1:
            raise UserError(f"drop_fraction must be in [0, 1), got {self.drop_fraction!r}; "
                            f"pass e.g. --drop-fraction 0.3")
        if self.update_until is not None and not 0 < self.update_until <= 1:
            raise UserError(f"update_until must be in (0, 1] (a fraction of training), got "
                            f"{self.update_until!r}; pass e.g. --update-until 0.75")
        return self


@dataclass
class GeneticConfig:
    """Options of the ``genetic`` method (gene-encoded layers; see docs/genetic.md).

    ``genome`` is an evolved initial wiring rule (the ``best.genome`` mapping that
    ``spikesculpt evolve`` writes; ``--genome FILE`` reads it); None = the random initial rule.
    It is stored in the config itself, so the run directory's hash names the rule it started from.
    """

    gene_dim: int = 16                   # g: length of every gene vector; O is g x g
    keep_first: bool = False             # leave the first connection layer plain
    keep_last: bool = False              # leave the last connection layer (readout) plain
    init_std: float = 0.02               # std of the initial encodings and O (random rule)
    genome: Optional[dict] = None        # evolved initial wiring rule (see spikesculpt evolve)

    def validate(self) -> "GeneticConfig":
        if isinstance(self.gene_dim, bool) or not isinstance(self.gene_dim, int) \
                or self.gene_dim <= 0:
            raise UserError(f"gene dimension must be a positive integer, got {self.gene_dim!r}; "
                            f"pass e.g. --gene-dim 16")
        if isinstance(self.init_std, bool) or not self.init_std > 0 \
                or not math.isfinite(self.init_std):
            raise UserError(f"genetic init_std must be > 0, got {self.init_std!r}; pass e.g. "
                            f"--gene-init-std 0.02")
        if self.genome is not None and not isinstance(self.genome, dict):
            raise UserError("genetic genome must be a mapping (the 'genome' written by "
                            "'spikesculpt evolve'); pass it with --genome FILE.json")
        return self


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
        from spikesculpt.data.augment import parse_augment  # UserError for unknown ops
        parse_augment(self.augment)
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
        ``Method.config_section``; None for a method without options)."""
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
        for name, default in self.HASHED_IF_SET.items():
            if d.get(name) == default:
                d.pop(name, None)
        return d


@dataclass
class EvolutionConfig:
    """Options of ``spikesculpt evolve`` (evolution of the initial wiring rule; docs/genetic.md).

    The network, data and training options (including the short training's optimizer, lr and
    batch size, and the final training's ``epochs``) come from the ``TrainConfig`` beside it.
    """

    population: int = 8            # candidates per generation (>= 2)
    generations: int = 5           # generations (> 0)
    eval_epochs: int = 1           # epochs of the short training that scores a candidate
    sigma0: float = 1.0            # CMA-ES initial step size, in units of each gene's scale
    lambda_spatial: float = 0.05   # λ_s(0): weight of the spatial entropy of O
    lambda_temporal: float = 0.05  # λ_d(0): weight of the temporal difference of the encodings
    spatial: bool = True           # use the spatial-entropy regulariser
    temporal: bool = True          # use the temporal-difference regulariser
    objectives: list = field(default_factory=lambda: ["accuracy"])  # accuracy[,params][,synops]
    min_gene_dim: int = 2          # several objectives: gene dimensions searched in [min, gene_dim]
    batched: str = "auto"          # population evaluation: auto | stack | vmap | off
    workers: int = 1               # processes for one-at-a-time evaluation (batched off / fallback)

    OBJECTIVES = ("accuracy", "params", "synops")
    NOT_HASHED = ("batched", "workers")   # how candidates are evaluated, not what

    def validate(self) -> "EvolutionConfig":
        for name, low, flag in (("population", 2, "--population 8"),
                                ("generations", 1, "--generations 5"),
                                ("eval_epochs", 1, "--eval-epochs 1"),
                                ("workers", 1, "--workers 2"), ("min_gene_dim", 1, "")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{name.replace('_', ' ')} must be an integer >= {low}, got "
                                f"{value!r}" + (f"; pass e.g. {flag}" if flag else ""))
        for name in ("sigma0", "lambda_spatial", "lambda_temporal"):
            require_finite(name, getattr(self, name), f"--{name.replace('_', '-')} 0.1")
        if not self.sigma0 > 0:
            raise UserError(f"sigma0 must be > 0, got {self.sigma0!r}; pass e.g. --sigma0 1.0")
        for name in ("lambda_spatial", "lambda_temporal"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        objectives = list(self.objectives) if isinstance(self.objectives, (list, tuple)) \
            else [self.objectives]
        for o in objectives:
            if o not in self.OBJECTIVES:
                raise UserError(f"unknown objective {o!r}; choose from: "
                                f"{', '.join(self.OBJECTIVES)} (e.g. --objectives "
                                f"accuracy,params,synops)")
        if "accuracy" not in objectives or len(set(objectives)) != len(objectives):
            raise UserError(f"objectives must include accuracy once, got {objectives}; e.g. "
                            f"--objectives accuracy,params")
        self.objectives = objectives
        if self.batched not in ("auto", "stack", "vmap", "off"):
            raise UserError(f"unknown batched mode {self.batched!r}; choose one of: auto, stack, "
                            f"vmap, off")
        return self


def digest(values: dict) -> str:
    """First 10 hex digits of the SHA-256 of the canonical JSON of ``values`` (names runs)."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _overlay_dataclass(obj, values: dict, where: str):
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise UserError(f"unknown config key {key!r} in {where}; valid keys: "
                            f"{', '.join(sorted(known))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"config key {key!r} in {where} must be a mapping")
            _overlay_dataclass(current, value, f"{where}:{key}")
        else:
            setattr(obj, key, _coerce(value, current, key, where))
    return obj


def _coerce(value, current, key, where):
    """Keep numbers typed (YAML may give 1e-3 as a string, 30 as an int for a float field)."""
    if value is None or current is None:
        return value
    try:
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(current, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        if isinstance(current, float):
            return float(value)
    except (TypeError, ValueError):
        raise UserError(f"config key {key!r} in {where} must be a {type(current).__name__}, "
                        f"got {value!r}") from None
    return value


def overlay(config: TrainConfig, values: dict, where: str = "overrides") -> TrainConfig:
    """Apply a (possibly nested) mapping of values on top of ``config`` in place."""
    return _overlay_dataclass(config, values, where)


def from_dict(values: dict, where: str = "config") -> TrainConfig:
    return overlay(TrainConfig(), values, where)


@dataclass
class LotteryConfig:
    """Options of ``spikesculpt lottery`` (spiking lottery tickets; see docs/lottery.md).

    The training of every level (epochs, optimizer, T, model, data, seed) is a ``TrainConfig``;
    this section says how tickets are searched. Defaults follow Kim et al. (ECCV 2022) where
    they apply: 25% of the remaining weights per round, 15 rounds, global magnitude; early-bird
    q = 5, τ = 0.02; early-time λ = 0.6 after 2 warm-up epochs.
    """

    strategy: str = "imp"          # imp | early-bird | score | multilevel
    rounds: int = 15               # pruning levels after the dense level 0
    rate: float = 0.25             # fraction of the remaining weights pruned per round, (0, 1)
    rewind: str = "1ep"            # rewind point: Nit (iterations) or Nep (epochs); 0it = init
    prune: str = "global"          # global | layer (magnitude ranking scope)
    dense_first: bool = False      # keep the first prunable layer dense
    dense_last: bool = False       # keep the readout dense
    early_time: bool = False       # search with fewer time steps T' (Kim et al.)
    et_lambda: float = 0.6         # pick the smallest T' with normalised KL < et_lambda
    et_warmup: int = 2             # epochs at full T before T' is picked
    eb_q: int = 5                  # early-bird: masks of the last q epochs are compared
    eb_tau: float = 0.02           # early-bird: stop when their Hamming distance < tau
    binary_weights: bool = False   # score tickets: alpha * sign(W) (biprop) instead of W
    evaluate: str = "all"          # all | ends: which levels get a full-T ticket training
    controls: list = field(default_factory=list)   # reinit, random (branches; not hashed)

    STRATEGIES = ("imp", "early-bird", "score", "multilevel")
    CONTROLS = ("reinit", "random")
    NOT_HASHED = ("controls",)

    def validate(self) -> "LotteryConfig":
        if self.strategy not in self.STRATEGIES:
            raise UserError(f"unknown lottery strategy {self.strategy!r}; choose one of: "
                            f"{', '.join(self.STRATEGIES)}")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds <= 0:
            raise UserError(f"rounds must be a positive integer (pruning levels), got "
                            f"{self.rounds!r}; pass e.g. --rounds 5")
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) \
                or not 0 < self.rate < 1:
            raise UserError(f"rate must be in (0, 1) (the fraction of the remaining weights "
                            f"pruned per round), got {self.rate!r}; pass e.g. --rate 0.25")
        from spikesculpt.methods.lottery.snapshot import parse_rewind

        parse_rewind(self.rewind)
        for name, allowed in (("prune", ("global", "layer")), ("evaluate", ("all", "ends"))):
            if getattr(self, name) not in allowed:
                raise UserError(f"unknown {name} {getattr(self, name)!r}; choose one of: "
                                f"{', '.join(allowed)}")
        require_finite("et_lambda", self.et_lambda, "--et-lambda 0.6")
        if not 0 < self.et_lambda:
            raise UserError(f"et_lambda must be > 0, got {self.et_lambda!r}; pass e.g. "
                            f"--et-lambda 0.6")
        for name in ("et_warmup", "eb_q"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if not 0 < self.eb_tau < 1:
            raise UserError(f"eb_tau must be in (0, 1) (a normalised Hamming distance), got "
                            f"{self.eb_tau!r}; pass e.g. --eb-tau 0.02")
        if not isinstance(self.controls, (list, tuple)):
            raise UserError(f"controls must be a list (reinit, random), got {self.controls!r}")
        for c in self.controls:
            if c not in self.CONTROLS:
                raise UserError(f"unknown control {c!r}; choose from: {', '.join(self.CONTROLS)}")
        self.controls = list(dict.fromkeys(self.controls))
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def hashed_dict(self) -> dict:
        d = self.to_dict()
        for name in self.NOT_HASHED:
            d.pop(name, None)
        return d
