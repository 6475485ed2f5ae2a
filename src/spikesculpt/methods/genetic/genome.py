"""The genome of the evolution: the *initial wiring rule* of a gene-encoded network.

A genome holds what a network's initialisation is drawn from (design notes §3.3):

- ``interaction``: the initial gene-interaction matrix O [g, g] (shared by all encoded layers);
- ``layers``: per encoded layer the statistics of its initial encodings, ``in_mean, in_std``
  (X_in ~ N(in_mean, in_std²)) and ``out_mean, out_std`` (X_out ~ N(out_mean, out_std²)).

A network is initialised from a genome by setting O and drawing the encodings from those
statistics with a seeded generator (the same noise for every genome: common random numbers, our
choice, so that candidates differ by their rule, not by their luck); each layer's α is then reset
so the generated weights start at Kaiming scale. The "random initial rule" (no evolution) is
O ~ N(0, s²) and every layer N(0, s²), s = ``init_std`` (0.02) — what :func:`genetic_encode` draws.

For CMA-ES the genome is a flat vector (:meth:`Genome.to_vector` / :meth:`Genome.from_vector`):
``[vec(O) (g² values, row-major), then per layer in_mean, log in_std, out_mean, log out_std]``;
standard deviations travel as logarithms so that every vector is a valid genome.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.methods.genetic.layers import INIT_STD, gene_layers

STATS = ("in_mean", "in_std", "out_mean", "out_std")
LOG_STD_RANGE = (-4.0, 4.0)  # clamp on log std when decoding a vector (std in [0.018, 55])


@dataclass
class Genome:
    interaction: np.ndarray                     # [g, g] float64
    layers: list[dict] = field(default_factory=list)  # [{name, in/out_mean, in/out_std}]

    @property
    def gene_dim(self) -> int:
        return int(self.interaction.shape[0])

    # ------------------------------------------------------------------ vectors (CMA-ES)
    @staticmethod
    def vector_size(gene_dim: int, n_layers: int) -> int:
        return gene_dim * gene_dim + 4 * n_layers

    def to_vector(self) -> np.ndarray:
        parts = [self.interaction.reshape(-1)]
        for layer in self.layers:
            parts.append(np.array([layer["in_mean"], math.log(layer["in_std"]),
                                   layer["out_mean"], math.log(layer["out_std"])]))
        return np.concatenate(parts).astype(np.float64)

    @classmethod
    def from_vector(cls, x, gene_dim: int, names: list[str]) -> "Genome":
        x = np.asarray(x, dtype=np.float64)
        g2 = gene_dim * gene_dim
        if x.shape != (g2 + 4 * len(names),):
            raise ValueError(f"genome vector has {x.size} values, expected {g2 + 4 * len(names)}")
        lo, hi = LOG_STD_RANGE
        layers = []
        for i, name in enumerate(names):
            m_in, ls_in, m_out, ls_out = x[g2 + 4 * i: g2 + 4 * i + 4]
            layers.append({"name": name, "in_mean": float(m_in),
                           "in_std": float(math.exp(min(max(ls_in, lo), hi))),
                           "out_mean": float(m_out),
                           "out_std": float(math.exp(min(max(ls_out, lo), hi)))})
        return cls(x[:g2].reshape(gene_dim, gene_dim).copy(), layers)

    @classmethod
    def random_rule(cls, gene_dim: int, names: list[str], init_std: float = INIT_STD,
                    generator: Optional[torch.Generator] = None) -> "Genome":
        """The random initial rule: O ~ N(0, init_std²) (all zeros without a generator: the
        mean CMA-ES samples around), every layer's encodings N(0, init_std²)."""
        o = np.zeros((gene_dim, gene_dim)) if generator is None else \
            (torch.randn(gene_dim, gene_dim, generator=generator, dtype=torch.float64)
             * init_std).numpy()
        return cls(o, [{"name": n, "in_mean": 0.0, "in_std": init_std, "out_mean": 0.0,
                        "out_std": init_std} for n in names])

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"gene_dim": self.gene_dim, "interaction": self.interaction.tolist(),
                "layers": [dict(layer) for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: dict, where: str = "genome") -> "Genome":
        try:
            o = np.asarray(data["interaction"], dtype=np.float64)
            layers = [{"name": str(layer["name"]),
                       **{k: float(layer[k]) for k in STATS}} for layer in data["layers"]]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{where} is not a genome (needs 'interaction' [g x g] and 'layers' "
                            f"with {', '.join(STATS)}); use the best genome written by "
                            f"'spikesculpt evolve' (evolution.json)") from None
        if o.ndim != 2 or o.shape[0] != o.shape[1] or not np.isfinite(o).all():
            raise UserError(f"{where}: 'interaction' must be a finite square matrix, got shape "
                            f"{list(o.shape)}")
        if any(layer[k] <= 0 or not math.isfinite(layer[k]) for layer in layers
               for k in ("in_std", "out_std")):
            raise UserError(f"{where}: in_std and out_std must be positive")
        return cls(o, layers)


@torch.no_grad()
def apply_genome(model: nn.Module, genome: Genome, generator: Optional[torch.Generator] = None,
                 where: str = "genome") -> nn.Module:
    """Initialise a gene-encoded ``model`` from ``genome`` (O, then every layer's encodings and α).

    Raises ``UserError`` when the genome was made for another architecture or gene dimension.
    """
    layers = gene_layers(model)
    if not layers:
        raise UserError(f"{where} needs a gene-encoded model; encode it first (genetic_encode)")
    names = [n for n, _ in layers]
    g = layers[0][1].gene_dim
    if genome.gene_dim != g or [layer["name"] for layer in genome.layers] != names:
        raise UserError(f"{where} was evolved for another network (gene dimension "
                        f"{genome.gene_dim}, layers {[la['name'] for la in genome.layers]}); this "
                        f"one has gene dimension {g} and layers {names}: use the same --model, "
                        f"--gene-dim and --keep-first/--keep-last as the evolution")
    o = layers[0][1].gene_interaction
    o.copy_(torch.as_tensor(genome.interaction, dtype=o.dtype, device=o.device))
    for (_, module), stats in zip(layers, genome.layers):
        module.reset_encodings(stats["in_mean"], stats["in_std"], stats["out_mean"],
                               stats["out_std"], generator=generator)
    return model


def read_genome_file(path) -> dict:
    """A genome mapping from a JSON file: a genome itself, or ``evolution.json`` (its ``best``)."""

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"genome file {path} not found; pass the evolution.json written by "
                        f"'spikesculpt evolve'") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"cannot read genome file {path} ({type(exc).__name__}); it must be "
                        f"JSON written by 'spikesculpt evolve'") from None
    if isinstance(data, dict) and "best" in data and isinstance(data["best"], dict):
        data = data["best"].get("genome", data["best"])
    if not isinstance(data, dict):
        raise UserError(f"genome file {path} holds no genome mapping")
    return Genome.from_dict(data, where=str(path)).to_dict()
