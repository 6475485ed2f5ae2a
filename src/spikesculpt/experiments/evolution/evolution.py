"""``spikesculpt evolve``: evolve the initial wiring rule, then train the best one fully.

One generation t (of G):

1. the search (``search.py``: ``--search``, by default CMA-ES for the single ``accuracy``
   objective and NSGA-II for ``accuracy,params[,synops]``, which also searches the gene
   dimension) proposes P genomes: ``search.ask()``;
2. every genome initialises a network that is trained briefly and scored on the validation split
   (``PopulationScorer``: the one ``Trainer``, batched where the model allows);
3. fitness = accuracy + λ_s(t)·S(O) + λ_d(t)·D(encodings, elite_{t−1}) (``fitness.py``); the
   search is told the losses of the objectives, ``[−fitness, parameters, SynOps]``:
   ``search.tell(...)``;
4. the generation's elite (highest fitness) becomes the reference of the next temporal difference.

After G generations the genome with the best validation accuracy of the short training (ties:
higher fitness, then fewer parameters) initialises a network trained for the full ``epochs``
(``run_training`` into ``DIR/final``). The regularisers steer the search; accuracy picks the
winner (our choice: the λ-weighted bonus differs between generations, so fitness values of
different generations are not comparable).

Outputs in ``DIR``: ``config.yaml`` (both configs and their hash; ``experiments/rundir.py``),
``evolution.json`` (``generations``: one row per generation — generation (counted from 1, as on
the console and in ``evolution.png``), best_fitness, mean_fitness, best_accuracy, mean_accuracy,
spatial_entropy and temporal_difference of the elite, lambda_spatial, lambda_temporal,
evaluations, mode, seconds; ``best``: the chosen genome and its scores; ``pareto_front`` for
several objectives; ``search``: ``Search.info()``; ``compute``: epochs spent; ``final``: the full
training's results), ``candidates.csv`` (every candidate), ``evolution.png``, ``pareto.png``
(several objectives) and ``final/`` (a normal run directory with ``metrics.json``).

Resume: after every generation the search (pickled whole, its random state included), the
records and the elite are written atomically to ``checkpoint.pt`` (``RunDir.save_state``). An
interrupted evolution continues with ``--resume`` at the first unfinished generation and gives
the same result as an uninterrupted one; the final training resumes like any run. A finished
evolution is a no-op. Within the unfinished generation, candidates scored one at a time
(``batched`` off, ``--workers``, ``--backend ray``) keep their scores in ``candidate_scores/``
as they arrive (``score_cache.py``): the resumed generation trains only the others.

``--backend ray`` (``cluster=``, a connected ``backend.RayCluster``): every candidate of a
generation is one Ray task (``PopulationScorer``); the final training runs here.

``run(final=False)`` (``--search-only``) stops after the search: the directory then holds the
finished search in ``checkpoint.pt`` and continues with ``--resume`` at the final training.

Data-parallel final training (``torchrun`` / ``--nproc N``; docs/distributed.md): in a
distributed run ``run`` trains only the final model, on every rank; the search must be finished
(by one process: ``--search-only``, or ``--nproc N``'s own search before it starts the ranks) —
otherwise every rank stops with one line. Rank 0 alone checks and locks the directory, reads the
checkpoint and sends the best genome to the others; ``run_training`` trains ``final/`` on every
rank (rank 0 writes it); rank 0 writes ``evolution.json`` and sends it to the others. Why not
the search on rank 0 while the other ranks wait: a search takes hours and would hold the others
(and their GPUs) in a collective past any timeout; a search runs its own parallelism
(``--workers``, ``--backend ray``), not data parallelism.
"""

from __future__ import annotations

import copy
import json
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from spikesculpt.config import TrainConfig, digest
from spikesculpt.core.distributed import (
    broadcast_object,
    from_main,
    is_distributed,
    is_main,
)
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import write_csv, write_json
from spikesculpt.experiments.backend import RayCluster
from spikesculpt.experiments.evolution.fitness import (
    fitness,
    regulariser_weight,
    temporal_difference,
)
from spikesculpt.experiments.evolution.options import EvolutionConfig
from spikesculpt.experiments.evolution.population import PopulationScorer, check_cluster_mode
from spikesculpt.experiments.evolution.report import plot_evolution, plot_pareto
from spikesculpt.experiments.evolution.score_cache import ScoreCache
from spikesculpt.experiments.evolution.search import (
    GenomeSpace,
    Search,
    create_search,
    objective_losses,
)
from spikesculpt.experiments.rundir import (
    RunDir,
    dataset_slug,
    hashed_train_config,
)
from spikesculpt.experiments.train_run import run_training

SUMMARY = "evolution.json"   # the run directory's result (RESULTS["evolution"]), per generation
CANDIDATES, PLOT, PARETO, FINAL = "candidates.csv", "evolution.png", "pareto.png", "final"


@dataclass
class EvolutionResult:
    path: Path
    summary: dict
    status: str     # "evolved" | "resumed" | "already-finished" | "searched" (final=False)


def evolution_hash(train: TrainConfig, evo: EvolutionConfig) -> str:
    """The hash naming an evolution: the training config's and the search's hashed fields."""
    return digest({"train": hashed_train_config(train), "evolution": evo.hashed_dict()})


def _prepare(train: TrainConfig, evo: EvolutionConfig) -> tuple[TrainConfig, EvolutionConfig]:
    train = copy.deepcopy(train)
    train.method = "genetic"
    train.genetic.genome = None
    train.validate()
    evo = copy.deepcopy(evo).validate()
    return train, evo


def _non_dominated(points: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``points`` (minimised) no other row dominates."""
    keep = []
    for i, p in enumerate(points):
        dominated = np.any(np.all(points <= p, axis=1) & np.any(points < p, axis=1))
        if not dominated:
            keep.append(i)
    return np.array(keep, dtype=int)


class Evolution:
    """One evolution in directory ``path`` (see the module docstring)."""

    def __init__(self, train: TrainConfig, evo: EvolutionConfig, path: Path,
                 progress: bool = True, cluster: Optional[RayCluster] = None):
        self.train, self.evo = _prepare(train, evo)
        check_cluster_mode(self.evo.batched, cluster is not None)
        self.cluster = cluster
        self.path = Path(path)
        self.run_dir = RunDir(self.path, "evolution")
        self.progress = progress
        self.digest = evolution_hash(self.train, self.evo)
        self.several_objectives = len(self.evo.objectives) > 1   # a Pareto front to report
        self.rows: list[dict] = []
        self.candidates: list[dict] = []
        self.elite = None
        self.best: Optional[dict] = None
        self.search: Optional[Search] = None
        self.generation = 0

    # ------------------------------------------------------------------ directory
    def _check_dir(self, resume: bool) -> str:
        """The run directory's rules (``RunDir.check``); finished when evolution.json holds the
        final training's result."""
        return self.run_dir.check(self.digest, resume, complete=lambda s: "final" in s)

    def _save_state(self) -> None:
        self.run_dir.save_state({
            "digest": self.digest, "generation": self.generation, "search": self.search,
            "rows": self.rows, "candidates": self.candidates, "elite": self.elite,
            "best": self.best})

    def _load_state(self) -> None:
        # the search object (pycma / pymoo state) is a pickle: our own file, not untrusted input
        state = self.run_dir.load_state(weights_only=False)
        if not isinstance(state, dict) or state.get("digest") != self.digest:
            raise UserError(f"cannot resume from {self.run_dir.checkpoint_path}: it is from "
                            f"another config; remove it to start over")
        self.generation = int(state["generation"])
        self.search, self.rows = state["search"], list(state["rows"])
        self.candidates, self.elite, self.best = list(state["candidates"]), state["elite"], \
            state["best"]

    # ------------------------------------------------------------------ search
    def _new_search(self, names: list[str]) -> Search:
        g = self.train.genetic.gene_dim
        space = GenomeSpace(tuple(names), g, min(self.evo.min_gene_dim, g),
                            self.train.genetic.init_std)
        return create_search(self.evo.search_name(), space, self.evo, self.train.seed)

    def summary(self) -> dict:
        out = {"generations": self.rows, "best": self.best,
               "objectives": list(self.evo.objectives),
               "search": self.search.info() if self.search is not None else None,
               "compute": {"candidate_epochs": sum(r["evaluations"] for r in self.rows)
                           * self.evo.eval_epochs,
                           "final_epochs": self.train.epochs},
               "evolution_hash": self.digest}
        if self.several_objectives and self.candidates:
            out["pareto_front"] = self.pareto_front()
        return out

    def pareto_front(self) -> list[dict]:
        keys = {"accuracy": lambda c: -c["accuracy"], "params": lambda c: c["params_total"],
                "synops": lambda c: c["synops"]}
        pts = np.array([[keys[o](c) for o in self.evo.objectives] for c in self.candidates])
        front = [self.candidates[i] for i in _non_dominated(pts)]
        return sorted(front, key=lambda c: c["params_total"])

    def _write_outputs(self) -> None:
        write_json(self.path / SUMMARY, self.summary())
        write_csv(self.path / CANDIDATES, self.candidates)
        plot_evolution(self.rows, self.path / PLOT,
                       title=f"{self.train.model} on {self.train.dataset}: evolution of the "
                             f"initial wiring rule ({self.search.name})")
        if self.several_objectives:
            plot_pareto(self.candidates, self.pareto_front(), self.path / PARETO)

    def score_cache(self) -> ScoreCache:
        """Where the scores of the generation in progress are kept as they arrive."""
        return ScoreCache(self.path, self.generation)

    # ------------------------------------------------------------------ one generation
    def step(self, scorer) -> dict:
        t, G = self.generation, self.evo.generations
        start = time.perf_counter()
        genomes = self.search.ask()
        results = scorer.score(genomes, cache=self.score_cache())
        lam_s = regulariser_weight(self.evo.lambda_spatial, t, G) if self.evo.spatial else 0.0
        lam_d = regulariser_weight(self.evo.lambda_temporal, t, G) if self.evo.temporal else 0.0
        for r in results:
            r["temporal_difference"] = temporal_difference(r["encodings"], self.elite)
            r["fitness"] = fitness(r["accuracy"], r["spatial_entropy"], r["temporal_difference"],
                                   lam_s, lam_d)
        self.search.tell(objective_losses(results, self.evo.objectives))
        fits = np.array([r["fitness"] for r in results])
        e = int(np.argmax(fits))
        elite = results[e]
        self.elite = elite["encodings"]
        for i, (genome, r) in enumerate(zip(genomes, results)):
            rec = {"generation": t + 1, "candidate": i, "accuracy": r["accuracy"],
                   "fitness": r["fitness"], "spatial_entropy": r["spatial_entropy"],
                   "temporal_difference": r["temporal_difference"], "gene_dim": r["gene_dim"],
                   "params_total": r["params_total"], "mode": r["mode"]}
            if "synops" in r:
                rec["synops"] = r["synops"]
            self.candidates.append(rec)
            key = (r["accuracy"], r["fitness"], -r["params_total"])
            if self.best is None or key > (self.best["accuracy"], self.best["fitness"],
                                           -self.best["params_total"]):
                self.best = {**rec, "genome": genome.to_dict()}
        row = {"generation": t + 1, "best_fitness": float(fits.max()),
               "mean_fitness": float(fits.mean()),
               "best_accuracy": float(max(r["accuracy"] for r in results)),
               "mean_accuracy": float(np.mean([r["accuracy"] for r in results])),
               "spatial_entropy": elite["spatial_entropy"],
               "temporal_difference": elite["temporal_difference"],
               "lambda_spatial": lam_s, "lambda_temporal": lam_d,
               "evaluations": len(results), "mode": results[0]["mode"],
               "seconds": time.perf_counter() - start}
        self.rows.append(row)
        self.generation += 1
        return row

    # ------------------------------------------------------------------ the whole run
    def run(self, resume: bool = False, scorer=None, final: bool = True) -> EvolutionResult:
        """Search, then (``final``) train the best rule fully; in a distributed run the final
        training alone (module docstring)."""
        if is_distributed():
            return self._final_on_ranks(resume)
        if self._check_dir(resume) == "finished":
            return self._finished()
        with self.run_dir.lock():  # one writer at a time; checked again under the lock
            action = self._check_dir(resume)
            if action == "finished":
                return self._finished()
            return self._run_locked(action, scorer, final)

    def _finished(self) -> EvolutionResult:
        return EvolutionResult(self.path, json.loads((self.path / SUMMARY).read_text()),
                               "already-finished")

    def _run_locked(self, action: str, scorer, final: bool) -> EvolutionResult:
        if action == "resume":
            self._load_state()
        else:
            self.run_dir.start(self.digest, {"train": self.train.to_dict(),
                                             "evolution": asdict(self.evo)})
        if self.generation < self.evo.generations:
            self._search(scorer)
        if not final:
            return EvolutionResult(self.path, self.summary(), "searched")
        summary = self.train_final()
        return EvolutionResult(self.path, summary, "resumed" if action == "resume" else "evolved")

    def _search(self, scorer) -> None:
        """The remaining generations, each checkpointed and reported as it ends."""
        own = scorer is None
        if own:
            scorer = PopulationScorer(self.train, self.evo.eval_epochs,
                                      synops="synops" in self.evo.objectives,
                                      batched=self.evo.batched, workers=self.evo.workers,
                                      cluster=self.cluster)
        try:
            if self.search is None:
                self.search = self._new_search(scorer.layer_names(self.train.genetic.gene_dim))
            while self.generation < self.evo.generations:
                row = self.step(scorer)
                self._save_state()
                self.score_cache().clear()   # the generation is in the checkpoint now
                self._write_outputs()
                if self.progress:
                    print(f"generation {row['generation']}/{self.evo.generations}: best "
                          f"fitness {row['best_fitness']:.4f} | best val accuracy "
                          f"{100 * row['best_accuracy']:.2f}% | S {row['spatial_entropy']:.3f} "
                          f"| D {row['temporal_difference']:.3f} | {row['mode']} | "
                          f"{row['seconds']:.1f} s", flush=True)
        finally:
            if own:
                scorer.close()

    def _final_on_ranks(self, resume: bool) -> EvolutionResult:
        """One rank of a distributed run: rank 0 checks, locks and reads the directory, whose
        search must be finished; every rank trains the final model with its best genome."""
        with ExitStack() as held:
            def decide():
                action = self._check_dir(resume)
                if action == "resume":  # the lock is taken only here: a refusal makes nothing
                    held.enter_context(self.run_dir.lock())
                    action = self._check_dir(resume)
                if action == "finished":
                    return action, json.loads((self.path / SUMMARY).read_text())
                if action == "resume":
                    self._load_state()
                if action == "fresh" or self.generation < self.evo.generations:
                    raise UserError(
                        f"{self.path}: the search is unfinished ({self.generation} of "
                        f"{self.evo.generations} generations); a distributed launch trains the "
                        f"final model only: run the search first in one process (the same "
                        f"command without torchrun, plus --search-only), or use --nproc N, "
                        f"which does both")
                return action, self.best

            action, payload = from_main(decide)
            if action == "finished":
                return EvolutionResult(self.path, payload, "already-finished")
            self.best = payload
            return EvolutionResult(self.path, self.train_final(), "resumed")

    def final_config(self) -> TrainConfig:
        cfg = copy.deepcopy(self.train)
        cfg.genetic.genome = self.best["genome"]
        cfg.genetic.gene_dim = int(self.best["gene_dim"])
        return cfg

    def train_final(self) -> dict:
        """The best rule trained for the full ``epochs`` in ``final/`` (on every rank of a
        distributed run); evolution.json with its results, written by rank 0 and returned on
        every rank."""
        result = run_training(self.final_config(), out=str(self.path / FINAL), resume=True,
                              progress=self.progress)
        summary = None
        if is_main():
            m = result.metrics
            summary = self.summary()
            summary["final"] = {k: m.get(k) for k in (
                "test_accuracy", "val_accuracy", "params_total", "params_plain", "compression",
                "gene_dim", "epochs", "train_seconds", "firing_rate")}
            summary["final"]["metrics"] = f"{FINAL}/metrics.json"
            self.run_dir.write_result(summary)  # with "final": marks the evolution finished
        return broadcast_object(summary)


def run_evolution(train: TrainConfig, evo: EvolutionConfig, out: Optional[str] = None,
                  runs_root: str = "runs", resume: bool = False, progress: bool = True,
                  scorer=None, cluster: Optional[RayCluster] = None,
                  final: bool = True) -> EvolutionResult:
    """Evolve the initial wiring rule for ``train`` (a ``TrainConfig``) and train the best
    (``final=False``: the search alone); ``cluster``: score the candidates as Ray tasks there
    (``--backend ray``). In a distributed run: the final training alone, on every rank."""
    path = Path(out) if out else default_path(train, evo, runs_root)
    return Evolution(train, evo, path, progress=progress, cluster=cluster).run(
        resume=resume, scorer=scorer, final=final)


def default_path(train: TrainConfig, evo: EvolutionConfig, runs_root: str = "runs") -> Path:
    """``runs_root/evolve-<model>-<dataset>-<hash>``: where an evolution goes without ``out``."""
    prepared, evo_p = _prepare(train, evo)
    return Path(runs_root) / f"evolve-{prepared.model}-{dataset_slug(prepared.dataset)}-" \
                             f"{evolution_hash(prepared, evo_p)}"
