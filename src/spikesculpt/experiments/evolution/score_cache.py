"""The scores of an unfinished generation's candidates, one file each, so that a restarted
evolution does not train a finished candidate again.

Evolution checkpoints whole generations (``checkpoint.pt`` after each); the candidates of the
generation in progress that were scored one at a time (``batched`` off, ``--workers``, ``--backend
ray``) are kept in ``DIR/candidate_scores/`` as they arrive::

    g0003-c05-<genome digest>.pt      generation 3 (counted from 1), candidate 5

The resumed search proposes the same genomes (its random state is in the checkpoint), so the
restart finds them here and trains only the candidates whose score never arrived; the digest of
the genome guards the match. The folder is removed once the generation is checkpointed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import torch

from spikesculpt.config import digest
from spikesculpt.core.io import atomic_write
from spikesculpt.methods.genetic.genome import Genome

FOLDER = "candidate_scores"


class ScoreCache:
    """Scores of generation ``generation`` (counted from 0) under ``run_path/candidate_scores``."""

    def __init__(self, run_path: Path, generation: int):
        self.folder = Path(run_path) / FOLDER
        self.generation = int(generation)

    def path(self, index: int, genome: Genome) -> Path:
        return self.folder / (f"g{self.generation + 1:04d}-c{index:02d}-"
                              f"{digest(genome.to_dict())}.pt")

    def get(self, index: int, genome: Genome) -> Optional[dict]:
        """The stored score of candidate ``index`` if it is this genome's, else None."""
        path = self.path(index, genome)
        if not path.is_file():
            return None
        # our own file (numpy arrays inside): not untrusted input
        return torch.load(path, map_location="cpu", weights_only=False)

    def put(self, index: int, genome: Genome, result: dict) -> None:
        atomic_write(self.path(index, genome), lambda tmp: torch.save(result, tmp))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
