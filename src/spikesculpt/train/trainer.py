"""The training loop: surrogate-gradient BPTT over time-major batches, with callbacks.

One epoch: for each batch ``x [B, ...]``, encode to ``[T, B, ...]`` (static data) or transpose
event frames ``[B, T, ...] -> [T, B, ...]``, run the model to logits ``[T, B, K]``, apply the loss
(``ce`` or ``tet``), backward, optimizer step. After every epoch the model is evaluated on the
validation split; the weights with the best validation accuracy are kept (ties keep the earlier
epoch) and the test accuracy is reported for those weights — never the best *test* accuracy.
A spiking layer that fires below ``SILENT_RATE`` on the validation set after an epoch gets one
warning naming it and the fix; ``silent_layers`` in the final metrics lists those silent on test.
BatchNorm running statistics average the first batches plainly (``norm_stats.py``).

Randomness is explicit: batch order, Poisson encoding and ``--augment`` (training batches only)
draw from generators seeded by ``(seed, epoch)``, so a resumed run replays exactly the epochs an
uninterrupted run would (on CPU).

Data-parallel (``torchrun`` / ``--nproc``; docs/distributed.md): every rank draws and encodes
the same global batch and trains on its slice (``core.distributed.local_slice``) through
``DistributedDataParallel`` (``self.forward_model``; ``self.model`` stays the plain module), with
the loss scaled so that the averaged gradient is the one-process one (``_ddp_loss``); the epoch's
loss and accuracy, the evaluation sums and BatchNorm running statistics are reduced over the
ranks, and training starts from rank 0's weights. In one process all of that is a no-op.

``fit`` is a whole run (validation after every epoch, best weights, final metrics);
``train_epochs`` only trains (the short training that scores an evolution's candidates, whose
result is the last weights). A *population* — P models run as one module whose logits are
``[P, T, B, K]`` — trains with ``PopulationTrainer`` (``population.py``): the same loop with the
loss summed over the candidates (``batch_loss``); correct predictions are counted per leading
index by ``count_correct``, so its ``evaluate`` gives one accuracy per candidate.
"""

from __future__ import annotations

import math
import time
import warnings
from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from spikesculpt.core.distributed import (
    all_reduce_sum_,
    is_distributed,
    is_main,
    local_slice,
    sum_numbers,
)
from spikesculpt.core.errors import UserError
from spikesculpt.data.augment import build_augment
from spikesculpt.encoding import encode
from spikesculpt.metrics.activity import ActivityRecorder
from spikesculpt.models.utils import stateful_modules
from spikesculpt.train.callbacks import Callback
from spikesculpt.train.compiled import compile_model
from spikesculpt.train.distributed import (
    broadcast_state,
    convert_sync_bn,
    device_for,
    local_loss_scale,
    sync_buffers,
    wrap,
)
from spikesculpt.train.losses import LOSSES
from spikesculpt.train.norm_stats import warm_running_stats
from spikesculpt.train.optim import build_optimizer, build_scheduler

if TYPE_CHECKING:  # the run's config is read, never imported (it is a floor above)
    from spikesculpt.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda requested but CUDA is not available; use --device cpu")
    return device


SILENT_RATE = 1e-3  # a spiking layer firing below this (spikes per neuron per step) is silent


def silent_layers(rates: dict[str, float]) -> list[str]:
    """Names of the spiking layers whose firing rate is below ``SILENT_RATE``."""
    return [name for name, rate in rates.items() if rate < SILENT_RATE]


def _generator(seed: int, epoch: int, stream: int, device: str = "cpu") -> torch.Generator:
    g = torch.Generator(device)
    g.manual_seed((seed * 1_000_003 + epoch * 101 + stream) % (2**63))
    return g


def iterate_batches(dataset, batch_size: int, shuffle: bool,
                    generator: Optional[torch.Generator] = None) -> Iterator:
    """Batches ``(x, y)``; in-memory ``TensorDataset``s are sliced directly (no per-sample collate)."""
    tensors = getattr(dataset, "tensors", None)
    if tensors is None:
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                             generator=generator)
        yield from loader
        return
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def fraction(count, seen: int):
    """``count / seen`` in float64: a float for a 0-d count (or int), a list of floats for a
    count per candidate ``[P]``."""
    return (torch.as_tensor(count).double() / max(seen, 1)).tolist()


def epoch_line(row: dict, epochs: int) -> str:
    """One history row as the line printed after each epoch (terminals and logs alike)."""
    return (f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f} acc "
            f"{100 * row['train_accuracy']:.2f}% | val loss {row['val_loss']:.4f} acc "
            f"{100 * row['val_accuracy']:.2f}% | firing {row['firing_rate']:.3f} | "
            f"{row['seconds']:.1f} s")


class Trainer:
    """Trains ``model`` on ``splits`` (a ``DataSplits``) as ``config`` says.

    Attributes callbacks may use: ``model``, ``optimizer``, ``scheduler``, ``config``, ``device``,
    ``epoch`` (0-based, current), ``step`` (training iterations so far), ``steps_per_epoch``,
    ``total_steps``, ``last_batch`` (the encoded input and labels of the latest batch),
    ``history`` (list of per-epoch rows), ``last_step_skipped`` / ``skipped_steps``.

    ``step`` counts iterations — batches trained — including the steps that mixed precision's
    ``GradScaler`` skips on an inf/NaN gradient (``last_step_skipped`` is then True and
    ``skipped_steps`` counts them): it is the position in the data stream, which resuming
    and rewinding (``epoch = step // steps_per_epoch``) rely on, and ``total_steps`` is counted
    the same way. Optimizer-hook methods count only the steps that really happened
    (``sparse/steps.py``), so under AMP their count can trail ``step`` by ``skipped_steps``.
    """

    def __init__(self, model: nn.Module, splits, config: TrainConfig,
                 callbacks: Iterable[Callback] = (), progress: bool = True):
        self.config = config
        self.splits = splits
        self.device = device_for(resolve_device(config.device))  # cuda:LOCAL_RANK per rank
        self.model = model.to(self.device)
        if getattr(config, "sync_bn", False):
            self.model = convert_sync_bn(self.model, self.device)
        self.callbacks = list(callbacks)
        self.progress = progress and is_main()  # one bar and one line per epoch, from rank 0
        self.loss_fn = LOSSES[config.loss]
        self.optimizer = build_optimizer(self.model.parameters(), config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.use_amp = bool(config.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_amp)
        self.steps_per_epoch = math.ceil(len(splits.train) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.epoch = 0
        self.step = 0
        self.skipped_steps = 0       # AMP overflow steps (counted in step too)
        self.last_step_skipped = False
        self._warned_silent = False
        self.history: list[dict] = []
        self.best_val = -1.0
        self.best_epoch = -1
        self.best_state: Optional[dict] = None
        self.train_seconds = 0.0
        self.last_batch = None
        # train-time augmentation of batch-first samples (``--augment``), None when off
        self.augment = build_augment(config.augment, splits.info)
        # Batches of the current epoch trained before this run started (a run rewound to an
        # iteration inside an epoch, e.g. lottery-ticket rewinding to 500it): the next
        # train_epoch draws them (same order, same encodings) but does not train on them.
        self.skip_batches = 0
        self.stateful = stateful_modules(self.model)  # e.g. SpikingJelly neurons: reset per batch
        for cb in self.callbacks:
            cb.setup(self)
        # DistributedDataParallel runs forward/backward (it all-reduces the gradients during
        # backward, before any optimizer hook reads them); ``self.model`` stays the plain module
        self.eager_forward_model = wrap(self.model, self.device)
        # ``--compile``: the training forward/backward through torch.compile (compiled.py);
        # a forward while a module of the model has hooks runs eagerly (``forward_for_step``)
        self.forward_model = compile_model(self.eager_forward_model, config.compile,
                                           self.device)
        self._hookable = (list(self.model.modules())
                          if self.forward_model is not self.eager_forward_model else [])

    # ---------------------------------------------------------------- data
    def to_time_major(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """``[B, ...]`` static samples -> encoded ``[T, B, ...]``; event frames ``[B, T, ...]`` are transposed."""
        x = x.to(self.device, non_blocking=True)
        for module in self.stateful:
            module.reset()
        if self.splits.info.kind == "frames":
            return x.transpose(0, 1)
        return encode(x, self.config.timesteps, self.config.encoding, generator=generator)

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()

    # ---------------------------------------------------------------- loop
    def train_epoch(self, epoch: int) -> dict:
        self.model.train()
        cfg = self.config
        order_gen = _generator(cfg.seed, epoch, 0)
        enc_gen = _generator(cfg.seed, epoch, 1)
        aug_gen = _generator(cfg.seed, epoch, 2)
        if self.device.type != "cpu":
            # Poisson draws on the device use the global (seeded) CUDA generator; distributed,
            # a seeded device generator: every rank must encode the global batch alike
            enc_gen = (_generator(cfg.seed, epoch, 1, self.device.type) if is_distributed()
                       else None)
        batches = iterate_batches(self.splits.train, cfg.batch_size, True, order_gen)
        # a live bar on terminals only; every epoch then leaves one line (see ``fit``)
        bar = tqdm(batches, total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   leave=False, disable=not self.progress or None, dynamic_ncols=True)
        skip, self.skip_batches = self.skip_batches, 0
        with warm_running_stats(self.model):
            total_loss, correct, seen = self._train_batches(bar, skip, enc_gen, aug_gen)
        if is_distributed():  # every rank trained on its slice: sums over the ranks
            total_loss, seen = sum_numbers(total_loss, seen)
            correct = all_reduce_sum_(torch.as_tensor(correct, dtype=torch.float64))
            sync_buffers(self.model)  # BatchNorm running statistics: the ranks' mean
        return {"train_loss": total_loss / seen, "train_accuracy": fraction(correct, seen)}

    def batch_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of one batch, logits ``[T, B, K]`` (``PopulationTrainer``: summed over the
        candidates of ``[P, T, B, K]``)."""
        return self.loss_fn(logits.float(), y)

    @staticmethod
    def count_correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Correct predictions (argmax of the time-averaged logits) of logits ``[..., T, B, K]``
        against labels ``[B]``: one count per leading index (a 0-d tensor for one model's
        ``[T, B, K]``, ``[P]`` for a population's ``[P, T, B, K]``)."""
        return (logits.mean(-3).argmax(-1) == y).sum(-1)

    def _train_batches(self, bar, skip: int, enc_gen, aug_gen) -> tuple[float, object, int]:
        """Train on the batches of ``bar`` after the first ``skip``; (loss sum, correct, seen)
        with ``correct`` as ``count_correct`` gives it, summed over the batches."""
        total_loss = correct = seen = 0
        for i, (x, y) in enumerate(bar):
            if self.augment is not None:
                x = self.augment(x, aug_gen)
            x = self.to_time_major(x, enc_gen)  # the global batch, encoded alike on every rank
            if i < skip:
                continue
            n_global = y.shape[0]
            part = local_slice(n_global)  # this rank's samples (all of them in one process)
            x, y = x[:, part], y[part].to(self.device, non_blocking=True)
            self.last_batch = (x, y)
            with self._autocast():
                logits = self.forward_for_step()(x)
                loss = self.batch_loss(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(self._ddp_loss(loss, logits, n_global)).backward()
            for cb in self.callbacks:
                cb.on_after_backward(self)
            self._optimizer_step()
            self.step += 1
            for cb in self.callbacks:
                cb.on_step_end(self)
            n = y.shape[0]
            if n:
                total_loss += float(loss.detach()) * n
            correct = correct + self.count_correct(logits.detach(), y).cpu()
            seen += n
            if self.progress:
                bar.set_postfix(loss=f"{total_loss / max(seen, 1):.3f}",
                                acc=f"{float(correct.double().mean()) / max(seen, 1):.3f}")
        return total_loss, correct, seen

    def forward_for_step(self) -> nn.Module:
        """The module the next training forward runs: ``forward_model``, or its eager twin while
        any module of the model has forward hooks (Hebbian growth recording an update step's
        coincidences, BatchNorm warming its statistics). A compiled graph would not run hooks
        added after it was traced, and a traced hook's side effects recompile it every step;
        so hooks always see an eager forward, and the graph is traced hook-free."""
        if self._hookable and any(m._forward_hooks or m._forward_pre_hooks
                                  for m in self._hookable):
            return self.eager_forward_model
        return self.forward_model

    def _ddp_loss(self, loss: torch.Tensor, logits: torch.Tensor, n_global: int) -> torch.Tensor:
        """The loss to back-propagate: in a distributed run the local mean times
        ``W · n_local / n_global`` (``train/distributed.py``), so that DDP's average of the
        ranks' gradients is the one-process gradient of the global batch; a rank with no sample
        of a (tiny last) batch still joins the gradient all-reduce, with zeros."""
        if not is_distributed():
            return loss
        n_local = self.last_batch[1].shape[0]
        if n_local == 0:
            return logits.sum() * 0.0
        return loss * local_loss_scale(n_local, n_global)

    def _optimizer_step(self) -> None:
        """``scaler.step`` + ``update``; with AMP, note whether the scaler skipped the step (it
        lowers the scale exactly when it found an inf/NaN gradient)."""
        scale = self.scaler.get_scale() if self.use_amp else 0.0
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.last_step_skipped = self.use_amp and self.scaler.get_scale() < scale
        self.skipped_steps += int(self.last_step_skipped)

    @torch.no_grad()
    def evaluate(self, dataset, seed_stream: int = 7) -> dict:
        """Accuracy, mean loss and firing rates of the current model on ``dataset``.

        Distributed, every rank encodes each batch whole (the same Poisson spikes as one
        process) and runs its slice of it; the sums (loss, correct, samples, spikes) are
        all-reduced, so every rank returns the numbers of one process over the whole split
        while each runs 1/W of the forward passes."""
        self.model.eval()
        gen = _generator(self.config.seed, 0, seed_stream) if self.device.type == "cpu" else None
        if gen is None and is_distributed():
            gen = _generator(self.config.seed, 0, seed_stream, self.device.type)
        total_loss = correct = seen = 0
        with ActivityRecorder(self.model) as rec:
            for x, y in iterate_batches(dataset, max(self.config.batch_size, 256), False):
                x = self.to_time_major(x, gen)
                part = local_slice(y.shape[0])
                x, y = x[:, part], y[part].to(self.device)
                if y.shape[0] == 0:
                    continue
                with self._autocast():
                    logits = self.model(x).float()
                total_loss += float(self.batch_loss(logits, y)) * y.shape[0]
                correct = correct + self.count_correct(logits, y).cpu()
                seen += y.shape[0]
        if is_distributed():
            total_loss, seen = sum_numbers(total_loss, seen)
            correct = all_reduce_sum_(torch.as_tensor(correct, dtype=torch.float64))
            rec.all_reduce()
        return {"accuracy": fraction(correct, seen), "loss": total_loss / max(seen, 1),
                "firing_rate": rec.firing_rate(), "layer_firing_rates": rec.layer_rates()}

    def fit(self, on_epoch_done: Optional[Callable[["Trainer"], None]] = None) -> dict:
        """Train from ``self.epoch`` to ``config.epochs``; return the final metrics.

        ``on_epoch_done(trainer)`` runs after each epoch's bookkeeping (the run directory uses it
        to write a checkpoint and history).
        """
        self._fit_start()
        while self.epoch < self.config.epochs:
            epoch = self.epoch
            train = self._train_one_epoch()
            val = self.evaluate(self.splits.val)
            row = {"epoch": epoch + 1, "train_loss": train["train_loss"],
                   "train_accuracy": train["train_accuracy"], "val_loss": val["loss"],
                   "val_accuracy": val["accuracy"], "firing_rate": val["firing_rate"],
                   "lr": train["lr"], "seconds": train["seconds"]}
            self._warn_if_silent(val["layer_firing_rates"], epoch)
            if val["accuracy"] > self.best_val:
                self.best_val, self.best_epoch = val["accuracy"], epoch + 1
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, row)
            self.history.append(row)
            if self.progress:
                tqdm.write(epoch_line(row, self.config.epochs))
            self.epoch += 1
            if on_epoch_done is not None:
                on_epoch_done(self)
        return self.final_metrics()

    def train_epochs(self, until: Optional[int] = None) -> None:
        """Train from ``self.epoch`` to epoch ``until`` (default ``config.epochs``) without
        evaluating: no validation, no best-weights selection, no history; the model keeps its
        last weights. The short training that scores an evolution's candidates
        (``experiments/evolution/population.py``); called with ``until = epoch + 1`` it trains
        one epoch at a time (the interleaved whole-run timing in
        ``benchmarks/bench_sparse_methods.py``). Callbacks get ``on_fit_start`` (fresh runs),
        ``on_epoch_start`` and the per-step events; ``on_epoch_end`` and ``on_fit_end`` need the
        validation row and final metrics that ``fit`` makes, and are not called."""
        until = self.config.epochs if until is None else min(until, self.config.epochs)
        self._fit_start()
        while self.epoch < until:
            self._train_one_epoch()
            self.epoch += 1

    def _fit_start(self) -> None:
        if self.epoch == 0:
            for cb in self.callbacks:
                cb.on_fit_start(self)
        broadcast_state(self.model)  # distributed: every rank starts from rank 0's weights

    def _train_one_epoch(self) -> dict:
        """``on_epoch_start``, one training epoch and the scheduler step (``self.epoch`` is not
        advanced); ``train_epoch``'s dict with the epoch's ``lr`` and ``seconds``."""
        epoch = self.epoch
        for cb in self.callbacks:
            cb.on_epoch_start(self, epoch)
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        train = self.train_epoch(epoch)
        self.scheduler.step()
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        return {**train, "lr": lr, "seconds": seconds}

    def _warn_if_silent(self, rates: dict, epoch: int) -> None:
        """Warn (once per trainer) when spiking layers fired below ``SILENT_RATE`` on the
        validation set after an epoch."""
        silent = silent_layers(rates)
        if silent and not self._warned_silent:
            self._warned_silent = True
            warnings.warn(f"spiking layer(s) {', '.join(silent)} silent after epoch {epoch + 1} "
                          f"(firing rate < {SILENT_RATE} on validation): no gradient passes "
                          f"them and accuracy stays near chance; raise the input scale of those "
                          f"layers (init_firing / --init-firing wakes layers fed straight by a "
                          f"Linear or Conv; else a larger weight init, a BatchNorm before the "
                          f"neuron or a lower v_threshold) or the density", stacklevel=2)

    def final_metrics(self) -> dict:
        """Load the best-validation weights and measure them on validation and test."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        val = self.evaluate(self.splits.val)
        test = self.evaluate(self.splits.test, seed_stream=8)
        metrics = {"test_accuracy": test["accuracy"], "val_accuracy": val["accuracy"],
                   "test_loss": test["loss"], "best_epoch": self.best_epoch,
                   "firing_rate": test["firing_rate"],
                   "layer_firing_rates": test["layer_firing_rates"],
                   "silent_layers": silent_layers(test["layer_firing_rates"]),
                   "train_seconds": self.train_seconds}
        if self.use_amp:
            metrics["amp_skipped_steps"] = self.skipped_steps
        for cb in self.callbacks:
            cb.on_fit_end(self, metrics)
        return metrics

    # ---------------------------------------------------------------- resume
    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch, "step": self.step, "skipped_steps": self.skipped_steps,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "history": self.history,
            "best_val": self.best_val, "best_epoch": self.best_epoch,
            "best_state": self.best_state, "train_seconds": self.train_seconds,
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": (torch.cuda.get_rng_state(self.device)
                         if self.device.type == "cuda" else None),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.history = list(state["history"])
        self.best_val, self.best_epoch = float(state["best_val"]), int(state["best_epoch"])
        self.best_state = state["best_state"]
        self.train_seconds = float(state["train_seconds"])
        for cb, cb_state in zip(self.callbacks, state["callbacks"]):
            cb.load_state_dict(cb_state)
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
