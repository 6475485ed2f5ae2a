"""One training run from a config: data, model, method callbacks, loop, run-directory outputs.

``run_training`` is what ``spikesculpt train`` calls; ``evaluate_run`` is what
``spikesculpt evaluate`` calls. Both raise ``UserError`` for anything a user can get wrong.

In a distributed run (``torchrun`` / ``--nproc``; docs/distributed.md) every rank calls
``run_training``: rank 0 alone checks and locks the run directory and tells the others what to
do (train fresh, resume — its checkpoint is sent to every rank —, or nothing: finished); every
rank trains; rank 0 alone writes (config.yaml, checkpoints, metrics, csv, plots, model) and the
others wait for its final metrics before they return.
"""

from __future__ import annotations

import json
import platform
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from spikesculpt.config import TrainConfig, from_dict
from spikesculpt.core.distributed import (
    broadcast_object,
    from_main,
    is_distributed,
    is_main,
    world_size,
)
from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write, write_csv
from spikesculpt.core.version import __version__
from spikesculpt.data import load_dataset
from spikesculpt.experiments.efficiency import compare_on_split, efficiency_metrics
from spikesculpt.experiments.rundir import (
    DEFAULT_RUNS_ROOT,
    LOCK_NAME,
    RunDir,
    config_hash,
    resolve_run_dir,
)
from spikesculpt.methods import build_method, resolved_config
from spikesculpt.metrics.efficiency import add_to_metrics
from spikesculpt.metrics.model_stats import model_stats
from spikesculpt.models import create_model
from spikesculpt.train.plots import plot_history
from spikesculpt.train.trainer import Trainer


@dataclass
class RunResult:
    run_dir: RunDir
    metrics: dict
    status: str  # "trained" | "resumed" | "already-finished"


def build_model(config: TrainConfig, info) -> torch.nn.Module:
    """The model for ``config`` and a dataset's ``info``, initialised from ``config.seed``."""
    kwargs = dict(config.model_kwargs)
    if info.image_size is None:
        kwargs.setdefault("in_features", info.in_features)
    torch.manual_seed(config.seed)
    return create_model(config.model, in_channels=info.in_channels, image_size=info.image_size,
                        num_classes=info.num_classes, timesteps=config.timesteps,
                        neuron=config.neuron.name, neuron_kwargs=config.neuron.module_kwargs(),
                        **kwargs)


def build(config: TrainConfig):
    """(data splits, model, [method]) for a validated config; the method has prepared the
    model (e.g. drawn its masks) but is not attached to an optimizer yet."""
    config.validate()
    method = build_method(config)
    splits = load_dataset(config.dataset, seed=config.seed, val_fraction=config.val_fraction,
                          data_root=config.data_root, timesteps=config.timesteps,
                          download=config.download)
    model = method.prepare_model(build_model(config, splits.info))
    return splits, model, [method]


def _save_checkpoint(run: RunDir, trainer: Trainer) -> None:
    run.save_state(trainer.state_dict())
    write_csv(run.history_path, trainer.history)


def _load_checkpoint(run: RunDir, trainer: Trainer) -> None:
    # on CPU: RNG states stay CPU tensors; load_state_dict moves the rest to the device
    state = from_main(run.load_state)  # rank 0 reads it; every rank loads the same state
    try:
        trainer.load_state_dict(state)
    except Exception as exc:  # a checkpoint of another model or version
        raise UserError(f"cannot resume from {run.checkpoint_path}: {type(exc).__name__}; "
                        f"the checkpoint is corrupt or from another version; remove it to "
                        f"start over") from None


def save_model(path: Path, model: torch.nn.Module, metadata: dict) -> None:
    """Weights (with zeros in place) as safetensors, ``metadata`` as JSON strings."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_model_weights(path: Path, model: torch.nn.Module) -> None:
    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise UserError(f"cannot read {path}: {exc}; the file is missing or corrupt — retrain "
                        f"the run") from None
    missing = set(model.state_dict()) - set(state)
    if missing:
        raise UserError(f"{path} lacks {sorted(missing)[0]} (and {len(missing) - 1} more); it "
                        f"was saved from another model — retrain the run")
    model.load_state_dict(state)


def run_training(config: TrainConfig, out: str | None = None,
                 runs_root: str = DEFAULT_RUNS_ROOT, resume: bool = False,
                 progress: bool = True) -> RunResult:
    """Train ``config`` in its run directory (``out``, or ``runs_root/<name>-<hash>``), or return
    the finished result there. The directory's config.yaml and hash are those of the resolved
    config (the method's defaults filled in); ``config`` itself is not changed."""
    config = resolved_config(config.validate())  # a copy: the caller's config is not changed
    digest = config_hash(config)
    run = resolve_run_dir(config, out, runs_root)
    if is_distributed():
        return _run_on_ranks(run, config, digest, resume, progress)
    if run.check(digest, resume) == "finished":
        return RunResult(run, run.read_result(digest), "already-finished")
    created = _missing_dirs(run.path)
    with run.lock():
        action = run.check(digest, resume)  # again: another process may have written it
        if action == "finished":
            return RunResult(run, run.read_result(digest), "already-finished")
        try:
            return _train_in(run, config, digest, action, progress)
        except BaseException:
            if action == "fresh" and not run.has_checkpoint():
                _remove_unfinished_start(run, created)  # no orphan config.yaml (nothing to resume)
            raise


def _run_on_ranks(run: RunDir, config: TrainConfig, digest: str, resume: bool,
                  progress: bool) -> RunResult:
    """``run_training`` as one rank of a distributed run: rank 0 holds the lock and decides."""
    created = _missing_dirs(run.path)
    with ExitStack() as held:
        def decide():
            held.enter_context(run.lock())
            action = run.check(digest, resume)
            return action, (run.read_result(digest) if action == "finished" else None)

        action, result = from_main(decide)
        if action == "finished":
            return RunResult(run, result, "already-finished")
        try:
            return _train_in(run, config, digest, action, progress)
        except BaseException:
            if is_main() and action == "fresh" and not run.has_checkpoint():
                _remove_unfinished_start(run, created)
            raise


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first (what creating
    the run directory will create)."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    return missing


def _remove_unfinished_start(run: RunDir, created: list[Path]) -> None:
    """Undo a fresh run that stopped before its first checkpoint: its config.yaml and history
    (and the folders this run created, e.g. ``runs/`` itself, if they are empty now) — nothing
    there could be resumed."""
    for path in (run.config_path, run.history_path):
        path.unlink(missing_ok=True)
    if created:
        (run.path / LOCK_NAME).unlink(missing_ok=True)
        for folder in created:  # deepest first; stops at the first one that is not empty
            try:
                folder.rmdir()
            except OSError:
                break


def _train_in(run: RunDir, config: TrainConfig, digest: str, action: str,
              progress: bool) -> RunResult:
    """Train ``config`` in the locked directory ``run`` (``action``: 'fresh' or 'resume')."""
    splits, model, callbacks = build(config)
    trainer = Trainer(model, splits, config, callbacks, progress=progress)
    if action == "resume":
        _load_checkpoint(run, trainer)
    elif is_main():
        run.start(digest, config.to_dict())

    metrics = trainer.fit(on_epoch_done=(lambda t: _save_checkpoint(run, t)) if is_main()
                          else None)
    status = "resumed" if action == "resume" else "trained"
    if not is_main():  # the others: rank 0 writes; return its metrics once it has
        return RunResult(run, broadcast_object(None), status)
    stats = model_stats(trainer.model)
    full = {
        "test_accuracy": metrics["test_accuracy"], "val_accuracy": metrics["val_accuracy"],
        "best_epoch": metrics["best_epoch"], "epochs": config.epochs,
        "timesteps": config.timesteps, "seed": config.seed, "dataset": config.dataset,
        "model": config.model, "method": config.method,
        "train_seconds": metrics["train_seconds"],
        **{k: stats[k] for k in ("params_total", "params_prunable", "nonzero_prunable", "density")},
        "firing_rate": metrics["firing_rate"],
        "layer_firing_rates": metrics["layer_firing_rates"], "test_loss": metrics["test_loss"],
        "layers": stats["layers"], "config_hash": digest,
        "data": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        "device": str(trainer.device), "world_size": world_size(), "torch": torch.__version__,
        "spikesculpt": __version__, "python": platform.python_version(),
    }
    full.update({k: v for k, v in metrics.items() if k not in full})  # method callbacks' keys
    add_to_metrics(full, efficiency_metrics(trainer, splits.test))  # SynOps, energy, footprint
    if getattr(trainer.model, "tokens_kept", None) is not None:  # patch tickets (spikformer)
        full["tokens_kept"] = float(trainer.model.tokens_kept)
    save_model(run.model_path, trainer.model, {"config_hash": digest, "model": config.model,
                                               "method": config.method,
                                               "density": stats["density"]})
    for cb in callbacks:
        cb.save_artifacts(run.path)
    write_csv(run.history_path, trainer.history)
    plot_history(trainer.history, run.plot_path, title=run.path.name)
    run.write_result(full)  # written last: its presence marks the run finished
    broadcast_object(full)  # distributed: the others return once the run directory is complete
    return RunResult(run, full, status)


def load_run_config(run_dir: str | Path) -> tuple[RunDir, TrainConfig]:
    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise UserError(f"run directory {run.path} does not exist; pass a folder written by "
                        f"'spikesculpt train'")
    if not run.config_path.is_file():
        raise UserError(f"{run.path} has no config.yaml; pass a folder written by "
                        f"'spikesculpt train'")
    kind, _, values = run.stored()
    if kind != "train" or not isinstance(values, dict):
        raise UserError(f"{run.config_path} is not the config of a training run; pass a folder "
                        f"written by 'spikesculpt train'")
    return run, from_dict(values, str(run.config_path))


def evaluate_run(run_dir: str | Path, device: str | None = None, sparse: bool = False,
                 calibrate: bool = True, batch_size: int | None = None,
                 keep_memory: bool = True) -> dict:
    """Reload a finished run's best model and recompute its metrics (with ``sparse``: also
    convert it to the sparse inference model and compare accuracy and time; ``calibrate``,
    ``batch_size`` and ``keep_memory``: see ``experiments.efficiency.compare_on_split``)."""
    run, config = load_run_config(run_dir)
    if device:
        config.device = device
    if not run.model_path.is_file():
        raise UserError(f"{run.path} has no model.safetensors (the run did not finish); "
                        f"resume it with 'spikesculpt train --resume --out {run.path}'")
    splits, model, callbacks = build(config)
    load_model_weights(run.model_path, model)
    trainer = Trainer(model, splits, config, progress=False)
    val = trainer.evaluate(splits.val)
    test = trainer.evaluate(splits.test, seed_stream=8)
    stats = model_stats(trainer.model)
    result = {"run_dir": str(run.path), "test_accuracy": test["accuracy"],
              "val_accuracy": val["accuracy"], "test_loss": test["loss"],
              "firing_rate": test["firing_rate"], "layer_firing_rates": test["layer_firing_rates"],
              **stats, "config_hash": config_hash(config)}
    for cb in callbacks:  # e.g. the genetic method: parameters against the plain architecture
        result.update(getattr(cb, "size_report", dict)())
    add_to_metrics(result, efficiency_metrics(trainer, splits.test))  # SynOps, energy, footprint
    if sparse:  # sparse inference model: same test accuracy?, time per batch dense vs sparse
        result["sparse_inference"] = compare_on_split(trainer, splits.test, calibrate=calibrate,
                                                      batch_size=batch_size,
                                                      keep_memory=keep_memory)
    return result
