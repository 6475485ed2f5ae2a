"""Scoring a population of initial wiring rules: build, short training, validation accuracy.

Every candidate (a :class:`Genome`) is turned into the network the final training would start
from (``GeneticMethod.prepare_model``: the same architecture, seed and noise for every genome),
trained for ``eval_epochs`` epochs on the training split with the run's optimizer, loss, batch
size, learning rate and schedule (cosine over the short training), and scored on the validation
split. Every candidate sees the same batches in the same order (seeded as in ``Trainer``).

Four ways to run a population, same numbers up to floating-point rounding (``batched=``):

- ``stack``: all P candidates in ONE model call per batch, as a :class:`StackedPopulation`
  (population merged into the batch axis; stacked ``[P, ...]`` parameters; fused neuron
  kernels). The losses are summed (each candidate's parameters only reach its own loss, so the
  gradients are those of P separate runs) and one Adam/SGD steps the stacked tensors
  (element-wise optimizers: identical to P optimizers). For models built from the standard
  layers (every registered model with LIF/IF neurons).
- ``vmap``: one call per batch under ``torch.func.vmap`` over ``torch.func.functional_call``
  with stacked parameters and buffers: any model vmap can run, but spiking neurons take their
  slower autograd path under vmap.
- ``off``: one candidate after the other, plain forward (fused neuron kernels); with
  ``workers > 1`` spread over that many processes (``spawn``).
- ``auto`` (default): ``stack`` where the model allows, else ``vmap`` where a probe on two
  samples succeeds, else ``off``.

Candidates with different gene dimensions (NSGA-II) are batched per gene dimension.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from spikesculpt.config import TrainConfig, from_dict
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.encoding import encode
from spikesculpt.experiments.evolution.fitness import encoding_summary, spatial_entropy
from spikesculpt.experiments.evolution.stacked import NotStackable, StackedPopulation, try_stack
from spikesculpt.experiments.train_run import build_model
from spikesculpt.methods.genetic.convert import GeneDimWarning, parameter_report
from spikesculpt.methods.genetic.genome import Genome
from spikesculpt.methods.genetic.layers import GENE_LAYERS, gene_layers
from spikesculpt.methods.genetic.method import GeneticMethod
from spikesculpt.models.utils import PRUNABLE_TYPES
from spikesculpt.train.losses import LOSSES
from spikesculpt.train.optim import build_optimizer, build_scheduler
from spikesculpt.train.trainer import _generator, iterate_batches, resolve_device

MODES = ("auto", "stack", "vmap", "off")


class PopulationScorer:
    """Scores genomes for ``config`` (a ``TrainConfig``; its ``epochs`` are replaced by
    ``eval_epochs``). ``synops=True`` also counts synaptic operations on the validation split."""

    def __init__(self, config: TrainConfig, eval_epochs: int, splits=None, synops: bool = False,
                 batched: str = "auto", workers: int = 1):
        if batched not in MODES:
            raise UserError(f"unknown batched mode {batched!r}; choose one of: {', '.join(MODES)}")
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
        self._engine_ok: dict[tuple, bool] = {}
        self._pool: Optional[ProcessPoolExecutor] = None

    # ------------------------------------------------------------------ models
    def build(self, genome: Optional[Genome], gene_dim: Optional[int] = None) -> nn.Module:
        """The network a genome initialises (None: the random initial rule of ``gene_dim``)."""

        cfg = copy.deepcopy(self.config)
        cfg.genetic.gene_dim = genome.gene_dim if genome is not None else int(gene_dim)
        cfg.genetic.genome = None if genome is None else genome.to_dict()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeneDimWarning)
            method = GeneticMethod(cfg.genetic, seed=cfg.seed)
            model = method.prepare_model(build_model(cfg, self.splits.info))
        return model.to(self.device)

    def layer_names(self, gene_dim: int) -> list[str]:
        return [n for n, _ in gene_layers(self.build(None, gene_dim))]

    def _time_major(self, x: torch.Tensor, generator) -> torch.Tensor:
        x = x.to(self.device)
        if self.splits.info.kind == "frames":
            return x.transpose(0, 1)
        return encode(x, self.config.timesteps, self.config.encoding, generator=generator)

    # ------------------------------------------------------------------ the loop
    def _train(self, model: nn.Module, forward, tensors: list, batched: bool) -> None:
        cfg = self.config
        optimizer = build_optimizer(tensors, cfg)
        scheduler = build_scheduler(optimizer, cfg)
        loss_fn = LOSSES[cfg.loss]
        cpu = self.device.type == "cpu"
        for epoch in range(cfg.epochs):
            model.train()
            order_gen = _generator(cfg.seed, epoch, 0)
            enc_gen = _generator(cfg.seed, epoch, 1) if cpu else None
            for x, y in iterate_batches(self.splits.train, cfg.batch_size, True, order_gen):
                x = self._time_major(x, enc_gen)
                y = y.to(self.device)
                logits = forward(x)
                if batched:
                    loss = vmap(lambda z: loss_fn(z.float(), y))(logits).sum()
                else:
                    loss = loss_fn(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            scheduler.step()

    @torch.no_grad()
    def _accuracy(self, model: nn.Module, forward, n: int) -> np.ndarray:
        model.eval()
        gen = _generator(self.config.seed, 0, 7) if self.device.type == "cpu" else None
        correct = torch.zeros(n, dtype=torch.long)
        seen = 0
        for x, y in iterate_batches(self.splits.val, max(self.config.batch_size, 256), False):
            x = self._time_major(x, gen)
            y = y.to(self.device)
            logits = forward(x)                       # [P, T, B, K]
            correct += (logits.mean(1).argmax(-1) == y).sum(-1).cpu()
            seen += y.shape[0]
        return correct.numpy() / max(seen, 1)

    def _result(self, model: nn.Module, accuracy: float, params: dict, buffers: dict) -> dict:
        layers = gene_layers(model)
        encodings = {}
        for name, _ in layers:
            encodings[f"{name}.x_in"] = params[f"{name}.x_in"].detach().cpu().numpy()
            encodings[f"{name}.x_out"] = params[f"{name}.x_out"].detach().cpu().numpy()
        o = params["gene_interaction.weight"].detach().cpu().numpy()
        out = {"accuracy": float(accuracy), "spatial_entropy": spatial_entropy(o),
               "encodings": encoding_summary(encodings), "gene_dim": int(o.shape[0]),
               "params_total": parameter_report(model)["params_total"]}
        if self.want_synops:
            out["synops"] = self._synops(model, params, buffers)
        return out

    # ------------------------------------------------------------------ one candidate
    def score_one(self, genome: Genome) -> dict:
        """Short training of one candidate with the plain forward (fused neuron kernels)."""
        model = self.build(genome)
        self._train(model, model, list(model.parameters()), batched=False)
        acc = self._accuracy(model, lambda x: model(x).unsqueeze(0), 1)[0]
        return self._result(model, acc, dict(model.named_parameters()),
                            dict(model.named_buffers()))

    # ------------------------------------------------------------------ a batch of candidates
    def score_batched(self, genomes: list[Genome], engine: str = "stack") -> list[dict]:
        """Short training of all ``genomes`` (same gene dimension) in one model call per batch.

        ``engine="stack"``: a :class:`StackedPopulation` (population merged into the batch
        axis, fused neuron kernels); ``"vmap"``: ``torch.func.vmap`` over stacked parameters.
        """
        models = [self.build(g) for g in genomes]
        template = models[0]
        if engine == "stack":
            stacked = StackedPopulation(models).to(self.device)
            self._train(stacked, stacked, list(stacked.parameters()), batched=True)
            acc = self._accuracy(stacked, stacked, len(genomes))
            states = [stacked.candidate_state(i) for i in range(len(genomes))]
        else:
            names = [n for n, _ in template.named_parameters()]
            params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models])
                      .requires_grad_(True) for n in names}
            buffers = {n: torch.stack([dict(m.named_buffers())[n] for m in models])
                       for n, _ in template.named_buffers()}

            def forward(x):
                return vmap(lambda p, b: functional_call(template, (p, b), (x,)),
                            in_dims=(0, 0), randomness="different")(params, buffers)

            self._train(template, forward, list(params.values()), batched=True)
            acc = self._accuracy(template, forward, len(genomes))
            states = [({n: v[i] for n, v in params.items()}, {n: v[i] for n, v in buffers.items()})
                      for i in range(len(genomes))]
        return [self._result(template, acc[i], *states[i]) for i in range(len(genomes))]

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
                params = {n: torch.stack([p.detach()] * 2).requires_grad_(True)
                          for n, p in model.named_parameters()}
                buffers = {n: torch.stack([b] * 2) for n, b in model.named_buffers()}
                x, _ = next(iterate_batches(self.splits.train, 2, False))
                x = self._time_major(x, _generator(0, 0, 1))
                model.train()
                out = vmap(lambda p, b: functional_call(model, (p, b), (x,)), in_dims=(0, 0),
                           randomness="different")(params, buffers)
                out.float().sum().backward()
                self._engine_ok[key] = True
            except Exception:  # any failure under vmap: fall back to one at a time
                self._engine_ok[key] = False
        return self._engine_ok[key]

    # ------------------------------------------------------------------ a population
    def mode_for(self, gene_dim: int) -> str:
        """``stack`` | ``vmap`` | ``workers`` | ``sequential`` for this gene dimension."""
        if self.batched in ("stack", "vmap"):
            return self.batched
        if self.batched == "auto":
            if self.can_stack(gene_dim):
                return "stack"
            if self.can_vmap(gene_dim):
                return "vmap"
        return "workers" if self.workers > 1 else "sequential"

    def score(self, genomes: list[Genome]) -> list[dict]:
        """Score every genome; results in the order given, each with ``"mode"``."""
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
            elif mode == "workers":
                pool = self._get_pool()
                scored = list(pool.map(_worker_score, [genomes[i].to_dict() for i in idx]))
            else:
                scored = [self.score_one(genomes[i]) for i in idx]
            for i, r in zip(idx, scored):
                r["mode"] = mode
                results[i] = r
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------ worker processes
    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:

            threads = max(1, (os.cpu_count() or 1) // self.workers)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
                initargs=(self.config.to_dict(), self.config.epochs, self.want_synops, threads))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ synaptic operations
    @torch.no_grad()
    def _synops(self, model: nn.Module, params: dict, buffers: dict) -> float:
        """Effective synaptic operations per validation sample (ACs + MACs), see SynOpsCounter."""
        model.eval()
        gen = _generator(self.config.seed, 0, 7) if self.device.type == "cpu" else None
        counter = SynOpsCounter(model)
        seen = 0
        with counter:
            for x, y in iterate_batches(self.splits.val, max(self.config.batch_size, 256), False):
                x = self._time_major(x, gen)
                functional_call(model, (params, buffers), (x,))
                seen += y.shape[0]
        return counter.total / max(seen, 1)


class SynOpsCounter:
    """Counts effective synaptic operations of the connection layers during forward passes.

    For every conv / linear layer (plain or gene-encoded): the number of (nonzero input,
    nonzero weight) pairs actually used — for Linear ``Σ_rows (x≠0) · (W≠0)ᵀ``, for Conv2d the
    convolution of the input indicator with the weight indicator (NeuroBench's definition,
    design notes §4; zero weights are absent). Binary inputs count as accumulates (``acs``),
    real-valued ones (the first layer on static images) as multiply-accumulates (``macs``).
    A minimal counter for the ``synops`` objective of ``spikesculpt evolve``.
    """

    def __init__(self, model: nn.Module):

        self.layers = [m for _, m in model.named_modules()
                       if isinstance(m, PRUNABLE_TYPES + GENE_LAYERS)]
        self.acs = 0.0
        self.macs = 0.0
        self._handles = []

    @property
    def total(self) -> float:
        return self.acs + self.macs

    def _hook(self, module, inputs, output):

        x = inputs[0]
        ind = (x != 0).to(torch.float32)
        w = (module.weight.detach() != 0).to(torch.float32)
        if w.dim() == 2:
            count = float((ind.reshape(-1, ind.shape[-1]) @ w.t()).sum())
        else:
            count = float(F.conv2d(ind, w, None, module.stride, module.padding,
                                   module.dilation).sum())
        binary = bool(((x == 0) | (x == 1)).all())
        if binary:
            self.acs += count
        else:
            self.macs += count

    def __enter__(self):
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []


# --------------------------------------------------------------------------- worker side
_WORKER: Optional[PopulationScorer] = None


def _worker_init(config: dict, eval_epochs: int, synops: bool, threads: int) -> None:
    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = PopulationScorer(from_dict(config), eval_epochs, synops=synops, batched="off")


def _worker_score(genome: dict) -> dict:
    assert _WORKER is not None
    return _WORKER.score_one(Genome.from_dict(genome))
