"""Scoring a population of initial wiring rules: build, short training, validation accuracy.

Every candidate (a :class:`Genome`) is turned into the network the final training would start
from (``GeneticMethod.prepare_model``: the same architecture, seed and noise for every genome),
trained for ``eval_epochs`` epochs by the one training loop, ``train.Trainer.train_epochs`` (the
run's optimizer, loss, batch size, learning rate, schedule — cosine over the short training —,
augmentation, AMP and BatchNorm warm start; no validation during it), and scored on the
validation split by ``Trainer.evaluate`` with the last weights. Every candidate sees the same
batches in the same order (the Trainer's seeded generators).

Four ways to run a population, same numbers up to floating-point rounding (``batched=``):

- ``stack``: all P candidates in ONE model call per batch, as a :class:`StackedPopulation`
  (population merged into the batch axis; stacked ``[P, ...]`` parameters; fused neuron
  kernels), trained by ``train.PopulationTrainer``: the losses are summed (each candidate's
  parameters only reach its own loss, so the gradients are those of P separate runs) and one
  Adam/SGD steps the stacked tensors (element-wise optimizers: identical to P optimizers). For
  models built from the standard layers (every registered model with LIF/IF neurons).
- ``vmap``: a :class:`VmappedPopulation` (``torch.func.vmap`` over ``functional_call`` with
  stacked parameters and buffers), trained the same way: any model vmap can run, but spiking
  neurons take their slower autograd path under vmap, and BatchNorm running statistics skip
  the Trainer's warm start (its hooks do not reach inside vmap).
- ``off``: one candidate after the other, a plain ``Trainer`` with the ``genetic`` method as its
  callback (fused neuron kernels); with ``workers > 1`` spread over that many processes
  (``spawn``).
- ``auto`` (default): ``stack`` where the model allows, else ``vmap`` where a probe on two
  samples succeeds, else ``off``.

With a Ray cluster (``cluster=``, ``--backend ray``; ``auto`` or ``off``) every candidate is one
Ray task (mode ``ray``): the same worker function as the process pool (``_worker_score``, each
Ray worker process building its scorer once), results taken as they finish, a task whose worker
died rerun by Ray. In the one-at-a-time modes (``sequential``, ``workers``, ``ray``) each score
is also stored as it arrives (``score_cache.ScoreCache``), so a restarted generation trains
only the candidates whose score never arrived.

Candidates with different gene dimensions (NSGA-II) are batched per gene dimension. With
``synops=True`` a candidate's synaptic operations per validation sample are counted by
``metrics.measure_efficiency`` (NeuroBench's definition, the count ``metrics.json`` reports) on
the validation batches the accuracy was measured on.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Iterator, Optional

import torch
from torch import nn

from spikesculpt.config import TrainConfig, from_dict
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.experiments.backend import RayCluster, default_threads
from spikesculpt.experiments.efficiency import encoded_batches
from spikesculpt.experiments.evolution.fitness import encoding_summary, spatial_entropy
from spikesculpt.experiments.evolution.score_cache import ScoreCache
from spikesculpt.experiments.evolution.stacked import NotStackable, StackedPopulation, try_stack
from spikesculpt.experiments.evolution.vmapped import VmappedPopulation
from spikesculpt.experiments.train_run import build_model
from spikesculpt.methods.genetic.convert import GeneDimWarning, parameter_report
from spikesculpt.methods.genetic.genome import Genome
from spikesculpt.methods.genetic.layers import gene_layers
from spikesculpt.methods.genetic.method import GeneticMethod
from spikesculpt.metrics.efficiency import measure_efficiency
from spikesculpt.train.population import PopulationTrainer
from spikesculpt.train.trainer import Trainer, _generator, iterate_batches, resolve_device

MODES = ("auto", "stack", "vmap", "off")
VAL_STREAM = 7   # the generator stream of validation encodings (Trainer.evaluate's default)


class PopulationScorer:
    """Scores genomes for ``config`` (a ``TrainConfig``; its ``epochs`` are replaced by
    ``eval_epochs``). ``synops=True`` also counts synaptic operations on the validation split.
    ``cluster``: a connected ``RayCluster``: one Ray task per candidate (``batched`` auto or
    off)."""

    def __init__(self, config: TrainConfig, eval_epochs: int, splits=None, synops: bool = False,
                 batched: str = "auto", workers: int = 1, cluster: Optional[RayCluster] = None):
        if batched not in MODES:
            raise UserError(f"unknown batched mode {batched!r}; choose one of: {', '.join(MODES)}")
        check_cluster_mode(batched, cluster is not None)
        self.config = copy.deepcopy(config)
        self.config.method = "genetic"
        self.config.epochs = int(eval_epochs)
        self.config.genetic.genome = None
        self.device = resolve_device(self.config.device)
        if splits is None:
            splits = load_dataset(config.dataset, seed=config.seed,
                                  val_fraction=config.val_fraction, data_root=config.data_root,
                                  timesteps=config.timesteps)
        self.splits = splits
        self.want_synops = bool(synops)
        self.batched = batched
        self.workers = int(workers)
        self.cluster = cluster
        self._engine_ok: dict[tuple, bool] = {}
        self._pool: Optional[ProcessPoolExecutor] = None

    # ------------------------------------------------------------------ models
    def candidate(self, genome: Optional[Genome],
                  gene_dim: Optional[int] = None) -> tuple[nn.Module, GeneticMethod]:
        """(network, its ``genetic`` method) for a genome (None: the random initial rule of
        ``gene_dim``), on the scorer's device."""
        cfg = copy.deepcopy(self.config)
        cfg.genetic.gene_dim = genome.gene_dim if genome is not None else int(gene_dim)
        cfg.genetic.genome = None if genome is None else genome.to_dict()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeneDimWarning)
            method = GeneticMethod(cfg.genetic, seed=cfg.seed)
            model = method.prepare_model(build_model(cfg, self.splits.info))
        return model.to(self.device), method

    def build(self, genome: Optional[Genome], gene_dim: Optional[int] = None) -> nn.Module:
        """The network a genome initialises (None: the random initial rule of ``gene_dim``)."""
        return self.candidate(genome, gene_dim)[0]

    def layer_names(self, gene_dim: int) -> list[str]:
        return [n for n, _ in gene_layers(self.build(None, gene_dim))]

    # ------------------------------------------------------------------ scores
    def _result(self, model: nn.Module, accuracy: float, params: dict, trainer: Trainer) -> dict:
        """The scores of one trained candidate: ``model`` holds its trained tensors (the single
        network, or the template loaded with the candidate's state)."""
        encodings = {}
        for name, _ in gene_layers(model):
            encodings[f"{name}.x_in"] = params[f"{name}.x_in"].detach().cpu().numpy()
            encodings[f"{name}.x_out"] = params[f"{name}.x_out"].detach().cpu().numpy()
        o = params["gene_interaction.weight"].detach().cpu().numpy()
        out = {"accuracy": float(accuracy), "spatial_entropy": spatial_entropy(o),
               "encodings": encoding_summary(encodings), "gene_dim": int(o.shape[0]),
               "params_total": parameter_report(model)["params_total"]}
        if self.want_synops:
            out["synops"] = self.synops(model, trainer)
        return out

    def synops(self, model: nn.Module, trainer: Trainer) -> float:
        """Effective synaptic operations (ACs + MACs) per validation sample of ``model``:
        ``metrics.measure_efficiency`` on the validation batches encoded as ``trainer``
        encodes them for its accuracy."""
        eff = measure_efficiency(model, encoded_batches(trainer, self.splits.val, VAL_STREAM))
        return eff["synops"]["effective_acs"] + eff["synops"]["effective_macs"]

    # ------------------------------------------------------------------ one candidate
    def train_one(self, genome: Genome) -> Trainer:
        """One candidate trained for ``eval_epochs`` by a ``Trainer`` (its model: the result)."""
        model, method = self.candidate(genome)
        trainer = Trainer(model, self.splits, self.config, callbacks=[method], progress=False)
        trainer.train_epochs()
        return trainer

    def score_one(self, genome: Genome) -> dict:
        """Short training of one candidate with the plain forward (fused neuron kernels)."""
        trainer = self.train_one(genome)
        accuracy = trainer.evaluate(self.splits.val, VAL_STREAM)["accuracy"]
        return self._result(trainer.model, accuracy, dict(trainer.model.named_parameters()),
                            trainer)

    # ------------------------------------------------------------------ a batch of candidates
    def score_batched(self, genomes: list[Genome], engine: str = "stack") -> list[dict]:
        """Short training of all ``genomes`` (same gene dimension) in one model call per batch.

        ``engine="stack"``: a :class:`StackedPopulation` (population merged into the batch
        axis, fused neuron kernels); ``"vmap"``: a :class:`VmappedPopulation`.
        """
        models = [self.build(g) for g in genomes]
        template = models[0]
        population = StackedPopulation(models) if engine == "stack" else \
            VmappedPopulation(models)
        trainer = PopulationTrainer(population, self.splits, self.config, progress=False)
        trainer.train_epochs()
        accuracies = trainer.evaluate(self.splits.val, VAL_STREAM)["accuracy"]
        results = []
        for i, accuracy in enumerate(accuracies):
            params, buffers = population.candidate_state(i)
            template.load_state_dict({**params, **buffers})   # the template: candidate i
            results.append(self._result(template, accuracy, params, trainer))
        return results

    def can_stack(self, gene_dim: int) -> bool:
        """Whether the architecture is built from layers :class:`StackedPopulation` batches."""
        key = ("stack", gene_dim)
        if key not in self._engine_ok:
            model = self.build(None, gene_dim)
            self._engine_ok[key] = try_stack([model, model]) is not None
        return self._engine_ok[key]

    def can_vmap(self, gene_dim: int) -> bool:
        """Whether the model runs (forward and backward) under vmap; probed once per gene dim."""
        key = ("vmap", gene_dim)
        if key not in self._engine_ok:
            try:
                model = self.build(None, gene_dim)
                population = VmappedPopulation([model, model]).train()
                x, _ = next(iterate_batches(self.splits.train, 2, False))
                trainer = PopulationTrainer(population, self.splits, self.config, progress=False)
                population(trainer.to_time_major(x, _generator(0, 0, 1))).float().sum().backward()
                self._engine_ok[key] = True
            except Exception:  # any failure under vmap: fall back to one at a time
                self._engine_ok[key] = False
        return self._engine_ok[key]

    # ------------------------------------------------------------------ a population
    def mode_for(self, gene_dim: int) -> str:
        """``stack`` | ``vmap`` | ``ray`` | ``workers`` | ``sequential`` for this gene
        dimension."""
        if self.cluster is not None:
            return "ray"
        if self.batched in ("stack", "vmap"):
            return self.batched
        if self.batched == "auto":
            if self.can_stack(gene_dim):
                return "stack"
            if self.can_vmap(gene_dim):
                return "vmap"
        return "workers" if self.workers > 1 else "sequential"

    def score(self, genomes: list[Genome], cache: Optional[ScoreCache] = None) -> list[dict]:
        """Score every genome; results in the order given, each with ``"mode"``. ``cache``: the
        one-at-a-time modes read the scores stored there and store each new one on arrival."""
        results: list[Optional[dict]] = [None] * len(genomes)
        groups: dict[int, list[int]] = {}
        for i, g in enumerate(genomes):
            groups.setdefault(g.gene_dim, []).append(i)
        for gene_dim, idx in groups.items():
            mode = self.mode_for(gene_dim)
            if mode in ("stack", "vmap"):
                try:
                    scored = self.score_batched([genomes[i] for i in idx], engine=mode)
                except NotStackable as exc:
                    raise UserError(f"this model cannot be evaluated with --batched stack "
                                    f"({exc}); use --batched vmap, or --batched off with "
                                    f"--workers N") from None
                except Exception as exc:
                    if self.batched != "vmap":
                        raise
                    raise UserError(f"this model cannot be evaluated batched under "
                                    f"torch.func.vmap ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:120]}); use --batched off "
                                    f"(with --workers N)") from None
            else:
                scored = self.score_each(genomes, idx, mode, cache)
            for i, r in zip(idx, scored):
                r["mode"] = mode
                results[i] = r
        return results  # type: ignore[return-value]

    def score_each(self, genomes: list[Genome], idx: list[int], mode: str,
                   cache: Optional[ScoreCache]) -> list[dict]:
        """The scores of ``genomes[i]`` for ``i`` in ``idx``, one candidate per task (``mode``:
        sequential | workers | ray): those in ``cache`` read back, the others scored and
        stored as they arrive."""
        found = {i: cache.get(i, genomes[i]) for i in idx} if cache is not None else {}
        todo = [i for i in idx if found.get(i) is None]
        for i, result in self._arrivals(mode, [genomes[i] for i in todo], todo):
            if cache is not None:
                cache.put(i, genomes[i], result)
            found[i] = result
        return [found[i] for i in idx]

    def _arrivals(self, mode: str, genomes: list[Genome],
                  keys: list[int]) -> Iterator[tuple[int, dict]]:
        """``(keys[j], score of genomes[j])`` as each finishes."""
        if mode == "sequential":
            for key, genome in zip(keys, genomes):
                yield key, self.score_one(genome)
        elif mode == "workers":
            pool = self._get_pool()
            futures = {pool.submit(_worker_score, g.to_dict()): k for k, g in zip(keys, genomes)}
            for future in as_completed(futures):
                yield futures[future], future.result()
        else:
            init = self._worker_args(self.cluster.threads)
            items = [(init, g.to_dict()) for g in genomes]
            num_gpus = self.cluster.gpus_for(self.config.device)
            for j, value, error in self.cluster.run(_remote_score, items, num_gpus):
                if error is not None:
                    raise error
                yield keys[j], value

    # ------------------------------------------------------------------ worker processes
    def _worker_args(self, threads: int) -> tuple:
        """What a worker process needs to build its scorer (``_worker_init``'s arguments)."""
        return self.config.to_dict(), self.config.epochs, self.want_synops, threads

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
                initargs=self._worker_args(default_threads(self.workers)))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def check_cluster_mode(batched: str, on_cluster: bool) -> None:
    """On a Ray cluster every candidate is one task: ``batched`` stack / vmap is a one-line
    ``UserError``."""
    if on_cluster and batched in ("stack", "vmap"):
        raise UserError(f"--backend ray scores one candidate per Ray task, not --batched "
                        f"{batched}; drop --batched (or use --backend local)")


# --------------------------------------------------------------------------- worker side
_WORKER: Optional[PopulationScorer] = None
_WORKER_ARGS: Optional[tuple] = None


def _worker_init(config: dict, eval_epochs: int, synops: bool, threads: int) -> None:
    global _WORKER, _WORKER_ARGS
    torch.set_num_threads(threads)
    _WORKER = PopulationScorer(from_dict(config), eval_epochs, synops=synops, batched="off")
    _WORKER_ARGS = (config, eval_epochs, synops, threads)


def _worker_score(genome: dict) -> dict:
    assert _WORKER is not None
    return _WORKER.score_one(Genome.from_dict(genome))


def _remote_score(item: tuple) -> dict:
    """A Ray task: ``(worker args, genome)`` -> its score; the worker process builds its scorer
    on its first candidate of a run (the same as a pool worker's) and keeps it."""
    init, genome = item
    if _WORKER_ARGS != init:
        _worker_init(*init)
    return _worker_score(genome)
