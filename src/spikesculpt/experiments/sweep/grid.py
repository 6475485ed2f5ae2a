"""The grid of a sweep and its expansion into cells.

A *cell* is one training run of the grid: the base ``TrainConfig`` with one method, one density
(for the methods that take one), one seed and one value of each varied field. Its run directory
is the ordinary one of ``run_training`` (named by the config hash), so a cell is reused or
resumed exactly like a ``spikesculpt train`` run.

Which methods take a density is read from the method registry, not from a list of names: a
method takes a density when the option section it declares (``Method.config_section``) has a
``density`` field (``sparse`` for static / set / rigl / esl). A method that takes none
(``dense``, ``genetic``) gets one cell per seed, not one per density. The same rule holds for a
varied field of a method option section (``vary: {sparse.grow: [random, hebbian]}``): it
multiplies only the cells of the methods that read that section.

Order (the rows of cells.csv): methods as given, then densities, then the varied values (in the
order of ``vary``'s keys, each in the order given), then seeds — stable across reruns. The
control cells (``controls``, see ``controls.py``) come last, in the same order. Ticket searches
(``lottery``, ``lottery_cells.py``) and evolutions (``evolve``, ``evolve_cells.py``) are expanded
by their own modules and follow.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from spikesculpt.config import MAX_SEED, TrainConfig, overlay
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.rundir import config_hash
from spikesculpt.experiments.sweep.controls import check_controls, matched_dense_config
from spikesculpt.methods import resolved_config
from spikesculpt.methods.registry import METHODS

GRID_KEYS = ("methods", "densities", "seeds", "vary", "controls", "lottery", "lottery_options",
             "evolve", "evolve_options")
FIXED_BY_GRID = {"method": "methods", "seed": "seeds"}


@dataclass
class Cell:
    """One run of the grid: its position (method, density target, seed, varied values) and the
    full config that ``run_training`` trains."""

    method: str
    density: Optional[float]      # the target density; None for a method that takes none
    seed: int
    varied: dict                  # {vary key: value}; a key the method does not read is absent
    config: TrainConfig
    role: str = ""                # "" for a grid cell; "matched-dense" for that control's cells


@dataclass
class SweepGrid:
    """methods × densities × seeds × the values of any other ``TrainConfig`` fields.

    ``seeds``: a count N (seeds 0..N-1) or an explicit list of seeds. ``densities``: None or
    empty = the base config's density (one value). ``vary``: ``{field: [values]}``, a field of
    ``TrainConfig`` (``lr``, ``epochs``) or of one of its sections, dotted (``neuron.tau``,
    ``sparse.grow``).
    """

    methods: Optional[list]       # None: not given (the CLI's default applies)
    densities: Optional[list] = None
    seeds: Union[int, list] = 1
    vary: dict = field(default_factory=dict)
    controls: list = field(default_factory=list)  # control cells: "matched-dense"
    lottery: list = field(default_factory=list)          # ticket-search strategies (imp, ...)
    lottery_options: dict = field(default_factory=dict)  # LotteryConfig fields (rounds, rate)
    evolve: bool = False                                 # evolve cells (evolve_cells.py)
    evolve_options: dict = field(default_factory=dict)   # EvolutionConfig fields (population)

    # ------------------------------------------------------------------ checks
    def validate(self) -> "SweepGrid":
        """One-line ``UserError`` for anything a user can get wrong; returns self."""
        if isinstance(self.methods, str):
            self.methods = [m.strip() for m in self.methods.split(",") if m.strip()]
        self.methods = list(dict.fromkeys(self.methods or ()))
        if not self.methods and not self.lottery and self.evolve is not True:
            raise UserError("the sweep names no method; pass e.g. --methods dense,esl "
                            "(spikesculpt list methods), --lottery imp or --evolve")
        for m in self.methods:
            if not isinstance(m, str):
                raise UserError(f"method names must be text, got {m!r}; pass e.g. "
                                f"--methods dense,esl")
            METHODS.get(m)  # unknown name: one line listing the registered ones
        self.densities = [_density(d) for d in (self.densities or ())]
        self.seed_list()
        if not isinstance(self.vary, dict):
            raise UserError(f"vary must be a mapping {{field: [values]}}, got "
                            f"{type(self.vary).__name__}; e.g. vary: {{lr: [1e-3, 3e-3]}}")
        for key, values in self.vary.items():
            _check_vary(key, values)
        self.controls = check_controls(self.controls or [])
        return self

    def seed_list(self) -> list[int]:
        """The seeds: ``range(N)`` for a count N, else the list as given (duplicates dropped)."""
        seeds = self.seeds
        if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple)):
            raise UserError(f"seeds must be a count or a list of seeds, got {seeds!r}; pass e.g. "
                            f"--seeds 5 (seeds 0..4) or --seeds 0,3,7")
        if isinstance(seeds, int):
            if seeds <= 0:
                raise UserError(f"seeds must be a positive count, got {seeds}; pass e.g. "
                                f"--seeds 5 (seeds 0..4)")
            return list(range(seeds))
        if not seeds:
            raise UserError("the seed list is empty; pass e.g. --seeds 5 (seeds 0..4) or "
                            "--seeds 0,3,7")
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
                raise UserError(f"seed {s!r} is not an integer in 0..{MAX_SEED}; pass e.g. "
                                f"--seeds 0,3,7")
        return list(dict.fromkeys(seeds))

    def to_dict(self) -> dict:
        """The grid as given (what sweep.yaml records), seeds as written (count or list)."""
        seeds = self.seeds if isinstance(self.seeds, int) else list(self.seeds)
        out = {"methods": list(self.methods), "densities": list(self.densities or ()),
               "seeds": seeds, "vary": {k: list(v) for k, v in self.vary.items()}}
        if self.controls:  # absent when none: the sweeps made before controls keep their hash
            out["controls"] = list(self.controls)
        if self.lottery:  # only then: a sweep without lottery cells keeps its hash
            out.update(lottery=list(self.lottery), lottery_options=dict(self.lottery_options))
        if self.evolve:  # only then: a sweep without evolve cells keeps its hash
            out.update(evolve=True, evolve_options=dict(self.evolve_options))
        return out

    def normalized(self) -> dict:
        """``to_dict`` with the seeds as the list they stand for (what names the sweep)."""
        return {**self.to_dict(), "seeds": self.seed_list()}

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> "SweepGrid":
        """A grid from a YAML mapping with the keys ``methods``, ``densities``, ``seeds``,
        ``vary`` (all optional here; ``validate`` checks what is needed)."""
        if not isinstance(data, dict):
            raise UserError(f"{where} must be a YAML mapping with the keys "
                            f"{', '.join(GRID_KEYS)}, got {type(data).__name__}")
        unknown = [k for k in data if k not in GRID_KEYS]
        if unknown:
            raise UserError(f"unknown key {unknown[0]!r} in {where}; a grid has the keys "
                            f"{', '.join(GRID_KEYS)} (other fields go under vary:)")
        lottery, options = data.get("lottery") or [], data.get("lottery_options") or {}
        if isinstance(lottery, str):
            lottery = [name.strip() for name in lottery.split(",") if name.strip()]
        if not isinstance(options, dict):
            raise UserError(f"lottery_options in {where} must be a mapping, got "
                            f"{type(options).__name__}; e.g. lottery_options: {{rounds: 4}}")
        evolve, evolve_options = _evolve_keys(data, where)
        return cls(methods=data.get("methods"), densities=data.get("densities"),
                   seeds=data.get("seeds", 1), vary=data.get("vary") or {},
                   controls=data.get("controls") or [],
                   lottery=lottery, lottery_options=dict(options),
                   evolve=evolve, evolve_options=evolve_options)

    # ------------------------------------------------------------------ cells
    def cells(self, base: TrainConfig) -> list[Cell]:
        """The cells of the grid on ``base`` (validated, each config resolvable: a method's
        missing input fails here, before any training), duplicates (same config) dropped."""
        self.validate()
        base = copy.deepcopy(base).validate()
        cells, seen = [], set()
        for method in self.methods:
            section = density_section(method)
            densities = (self.densities or [getattr(base, section).density]) if section \
                else [None]
            keys = [k for k in self.vary if _reads(method, k)]
            for density in densities:
                for values in itertools.product(*(self.vary[k] for k in keys)):
                    varied = dict(zip(keys, values))
                    for seed in self.seed_list():
                        config = _cell_config(base, method, section, density, seed, varied)
                        name = config_hash(config)  # the run directory's name
                        if name in seen:
                            continue
                        seen.add(name)
                        cells.append(Cell(method, density, seed, varied, config))
        if "matched-dense" in self.controls:
            for cell in self._matched_dense_cells(base):
                name = config_hash(cell.config)
                if name not in seen:  # e.g. two tiny densities narrowed to the same model
                    seen.add(name)
                    cells.append(cell)
        return cells

    def _matched_dense_cells(self, base: TrainConfig) -> list[Cell]:
        """A ``dense`` cell narrowed to the connections the sparse cells keep, per density of
        the grid (its densities, else the base config's), varied value and seed."""
        section = next((s for s in map(density_section, self.methods) if s), "sparse")
        densities = self.densities or [getattr(base, section).density]
        keys = [k for k in self.vary if _reads("dense", k)]
        counters: dict = {}
        cells = []
        for density in densities:
            for values in itertools.product(*(self.vary[k] for k in keys)):
                varied = dict(zip(keys, values))
                for seed in self.seed_list():
                    full = _cell_config(base, "dense", None, None, seed, varied)
                    config = matched_dense_config(full, density, counters)[0]
                    cells.append(Cell("dense", density, seed, varied, config, "matched-dense"))
        return cells


def _evolve_keys(data: dict, where: str) -> tuple:
    """(evolve, evolve_options) of a grid file: ``evolve: {population: 8}`` (options, evolve on)
    or ``evolve: true`` with ``evolve_options: {...}`` (not both)."""
    evolve, options = data.get("evolve", False), data.get("evolve_options") or {}
    if not isinstance(options, dict):
        raise UserError(f"evolve_options in {where} must be a mapping, got "
                        f"{type(options).__name__}; e.g. evolve_options: {{population: 8}}")
    if isinstance(evolve, dict):
        if options:
            raise UserError(f"{where} gives evolve options twice (evolve: {{...}} and "
                            f"evolve_options:); keep one")
        return True, dict(evolve)
    if evolve is None:
        evolve = False
    if not isinstance(evolve, bool):
        raise UserError(f"evolve in {where} must be true, false or a mapping of options, got "
                        f"{evolve!r}; e.g. evolve: {{population: 8, generations: 5}}")
    return evolve, dict(options)


def density_section(method: str) -> Optional[str]:
    """The ``TrainConfig`` section holding ``method``'s density, or None if it takes none."""
    section = getattr(METHODS.get(method), "config_section", None)
    if section is None:
        return None
    options = getattr(TrainConfig(), section)
    return section if "density" in {f.name for f in dataclasses.fields(options)} else None


def _reads(method: str, key: str) -> bool:
    """Whether ``method`` reads the varied field ``key`` (a common field: every method; a
    field of a method option section: the methods that declare that section)."""
    head = key.split(".")[0]
    if head not in TrainConfig.option_sections():
        return True
    return getattr(METHODS.get(method), "config_section", None) == head


def _cell_config(base: TrainConfig, method: str, section: Optional[str], density,
                 seed: int, varied: dict) -> TrainConfig:
    config = varied_config(base, seed, varied, method)
    if section is not None:
        getattr(config, section).density = density
    resolved_config(config.validate())  # e.g. ticket without a mask: one line, before training
    return config


def varied_config(base: TrainConfig, seed: int, varied: dict,
                  method: Optional[str] = None) -> TrainConfig:
    """A copy of ``base`` with ``seed``, the grid's ``varied`` values (dotted keys) and, if
    given, ``method``: the config of one cell, lottery search or evolution (not validated)."""
    config = copy.deepcopy(base)
    if method is not None:
        config.method = method
    config.seed = seed
    for key, value in varied.items():
        overlay(config, _nested(key, value), "the sweep's vary")
    return config


def _nested(key: str, value) -> dict:
    """``"neuron.tau", 2.0`` -> ``{"neuron": {"tau": 2.0}}``."""
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _density(value) -> float:
    """A density target: a number in (0, 1] (the fraction of connections kept)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"density {value!r} is not a number; pass e.g. --densities 0.5,0.1") \
            from None
    if not isinstance(value, (numbers.Number, str)) or not math.isfinite(number) \
            or not 0 < number <= 1:
        raise UserError(f"density {value!r} is outside (0, 1] (the fraction of connections "
                        f"kept); pass e.g. --densities 0.5,0.1")
    return number


def _check_vary(key, values) -> None:
    """A varied field: a known ``TrainConfig`` field (dotted for a section), not one the grid
    sets itself, with a non-empty list of values of the right type."""
    if not isinstance(key, str) or not key:
        raise UserError(f"vary key {key!r} must be a TrainConfig field name, e.g. lr")
    if key in FIXED_BY_GRID:
        raise UserError(f"vary: {key} is set by the grid's {FIXED_BY_GRID[key]}; use "
                        f"{FIXED_BY_GRID[key]} instead")
    parts = key.split(".")
    if parts[-1] == "density" and parts[0] in TrainConfig.option_sections():
        raise UserError(f"vary: {key} is set by the grid's densities; use densities instead")
    node: Any = TrainConfig()
    for i, part in enumerate(parts):
        names = {f.name for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) \
            else set()
        if part not in names:
            where = ".".join(parts[:i]) or "TrainConfig"
            raise UserError(f"unknown vary field {key!r}: {where} has no field {part!r}; vary "
                            f"takes TrainConfig fields such as lr, epochs, neuron.tau, sparse.grow")
        node = getattr(node, part)
    if dataclasses.is_dataclass(node):
        raise UserError(f"vary field {key!r} is a section; name one of its fields, e.g. "
                        f"{key}.{dataclasses.fields(node)[0].name}")
    if not isinstance(values, (list, tuple)) or not values:
        raise UserError(f"vary: {key} needs a non-empty list of values, got {values!r}; e.g. "
                        f"vary: {{{key}: [a, b]}}")
    for value in values:  # type check now, before anything runs
        overlay(TrainConfig(), _nested(key, value), f"the sweep's vary ({key})")
