"""``LotteryConfig``: the options of ``spikesculpt lottery``, declared once, here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from spikesculpt.core.checks import require_finite
from spikesculpt.core.errors import UserError
from spikesculpt.core.options import hashed_if_set, option
from spikesculpt.experiments.lottery.registry import STRATEGIES
from spikesculpt.methods.tickets.snapshot import parse_rewind


@dataclass
class LotteryConfig:
    """Options of ``spikesculpt lottery`` (spiking lottery tickets; see docs/lottery.md).

    The training of every level (epochs, optimizer, T, model, data, seed) is a ``TrainConfig``;
    this section says how tickets are searched. Defaults follow Kim et al. (ECCV 2022) where
    they apply: 25% of the remaining weights per round, 15 rounds, global magnitude; early-bird
    q = 5, τ = 0.02; early-time λ = 0.6 after 2 warm-up epochs.
    """

    strategy: str = "imp"          # a registered strategy (``STRATEGIES``; spikesculpt list)
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
    # ours, not the papers' (docs/lottery.md, "Sparse BN-free tickets"); hashed only when set
    min_inputs: int = option(0, hash="if_set", help="imp/early-bird: magnitude pruning never "
                             "removes the k largest active inputs of any output unit (neuron, "
                             "conv channel): a per-layer floor against layer collapse; 0 = none")
    rescale: bool = option(False, hash="if_set", help="imp/early-bird: scale the kept start "
                           "weights of every layer without BatchNorm after it so the layer keeps "
                           "its dense start's weight norm; tickets and controls alike")
    # ours (docs/lottery.md, "multilevel"); hashed only when set
    embedding_search: str = option("probe", hash="if_set", help="multilevel: where the "
                                   "embedding's connection ticket is searched: probe (a "
                                   "temporary linear head on the mean token) | joint (inside "
                                   "the whole model, patch tickets on, the rest trained with it)")
    train_embedding: Optional[bool] = option(
        None, hash="if_set", none_means="multilevel's own: trained (issue 14)",
        help="multilevel: train the embedding's ticket (its initial weights under its mask, as a "
             "lottery ticket is trained) with the rest (the default)", switches=(
            ("--frozen-embedding", False, "multilevel: keep the embedding's ticket frozen and "
             "untrained (the papers' supermask; the default before issue 14)"),))

    CONTROLS = ("reinit", "random")
    EMBEDDING_SEARCHES = ("probe", "joint")
    NOT_HASHED = ("controls",)

    def validate(self) -> "LotteryConfig":
        if not isinstance(self.strategy, str) or self.strategy not in STRATEGIES:
            raise UserError(f"unknown lottery strategy {self.strategy!r}; choose one of: "
                            f"{', '.join(STRATEGIES.names())}")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds <= 0:
            raise UserError(f"rounds must be a positive integer (pruning levels), got "
                            f"{self.rounds!r}; pass e.g. --rounds 5")
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) \
                or not 0 < self.rate < 1:
            raise UserError(f"rate must be in (0, 1) (the fraction of the remaining weights "
                            f"pruned per round), got {self.rate!r}; pass e.g. --rate 0.25")
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
        self._check_magnitude_options()
        self._check_embedding_search()
        return self

    def _check_embedding_search(self) -> None:
        if self.embedding_search not in self.EMBEDDING_SEARCHES:
            raise UserError(f"unknown embedding_search {self.embedding_search!r}; choose one "
                            f"of: {', '.join(self.EMBEDDING_SEARCHES)}")
        if self.train_embedding is not None and not isinstance(self.train_embedding, bool):
            raise UserError(f"train_embedding must be true or false, got "
                            f"{self.train_embedding!r}")
        flag = {True: "--train-embedding", False: "--frozen-embedding"}.get(self.train_embedding)
        used = [name for name, on in (("--embedding-search", self.embedding_search != "probe"),
                                      (flag, self.train_embedding is not None)) if on]
        if used and self.strategy != "multilevel":
            raise UserError(f"{used[0]} applies to the multilevel strategy, not "
                            f"{self.strategy!r}; drop it or pass --strategy multilevel")

    def _check_magnitude_options(self) -> None:
        value = self.min_inputs
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"min_inputs must be an integer >= 0 (inputs every output unit "
                            f"keeps; 0 = no floor), got {value!r}; pass e.g. --min-inputs 8")
        if not isinstance(self.rescale, bool):
            raise UserError(f"rescale must be true or false, got {self.rescale!r}")
        magnitude = getattr(STRATEGIES.get(self.strategy), "magnitude_pruning", False)
        if (value or self.rescale) and not magnitude:
            flag = "--min-inputs" if value else "--rescale"
            allowed = [n for n in STRATEGIES
                       if getattr(STRATEGIES.get(n), "magnitude_pruning", False)]
            raise UserError(f"{flag} applies to the magnitude-pruning strategies "
                            f"({', '.join(allowed)}), not {self.strategy!r}; drop it or pass "
                            f"--strategy imp")

    def to_dict(self) -> dict:
        return asdict(self)

    def embedding_trained(self) -> bool:
        """Whether the multilevel strategy trains the embedding's ticket: ``train_embedding``,
        or where it is None the strategy's default, trained (chosen on validation in issue 14:
        docs/lottery.md, "Closing the multi-level gap")."""
        return True if self.train_embedding is None else self.train_embedding

    def hashed_dict(self) -> dict:
        d = self.to_dict()
        for name in self.NOT_HASHED:
            d.pop(name, None)
        for name, default in hashed_if_set(type(self)).items():
            if d.get(name) == default:
                d.pop(name)   # added later: a search without it keeps its directory name
        # train_embedding by its effect, against the value searches had before it existed
        # (frozen): a multilevel search that trains the embedding, by default or by flag, is
        # hashed with it; a frozen one, or any other strategy, keeps its old name
        d.pop("train_embedding", None)
        if self.strategy == "multilevel" and self.embedding_trained():
            d["train_embedding"] = True
        return d
