"""Starting a data-parallel run and wrapping the model: the loop's side of ``torch.distributed``.

``init_from_env()`` starts the process group when the environment says so — ``torchrun`` (and
``--nproc N``, ``cli/launch.py``) set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT`` for every process. The backend is NCCL when CUDA is available (with gloo for
the few CPU tensors: ``"cpu:gloo,cuda:nccl"``), gloo otherwise. Every collective times out after
``SPIKESCULPT_DIST_TIMEOUT`` seconds (default 600), so a rank that hangs or vanishes stops the
run with an error instead of a wait without end.

``device_for(name)``: with ``--device auto`` / ``cuda``, rank r of a machine uses
``cuda:LOCAL_RANK``.

``wrap(model, device)``: ``DistributedDataParallel`` around the model (the trainer keeps the
unwrapped module as ``trainer.model``, so parameter and mask names carry no ``module.`` prefix).
``broadcast_buffers=False``: BatchNorm running statistics are averaged over the ranks after every
epoch instead (``sync_buffers``), so evaluation runs one model on every rank.

``local_loss_scale(n_local, n_global)``: DDP *averages* the ranks' gradients; a rank's loss is a
mean over its ``n_local`` samples, so multiplying it by ``W · n_local / n_global`` makes the
average ``(1/W) Σ_r W (n_r/N) ∇mean_r = (1/N) Σ_i ∇l_i`` — the one-process gradient of the global
batch, also for an uneven last batch.
"""

from __future__ import annotations

import inspect
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from spikesculpt.core.distributed import average_floats_, barrier, is_distributed, world_size
from spikesculpt.core.errors import UserError

TIMEOUT_ENV = "SPIKESCULPT_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600


def launched_distributed() -> bool:
    """True when the environment describes a multi-process run (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def timeout() -> timedelta:
    text = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(text)
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds; "
                        f"set e.g. {TIMEOUT_ENV}=600") from None
    return timedelta(seconds=seconds)


def init_from_env() -> bool:
    """Start the process group from torchrun's environment; False when there is none (one
    process) or it is already started."""
    if not launched_distributed() or dist.is_initialized():
        return False
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, timeout=timeout())
    return True


def shutdown(finished: bool) -> None:
    """Shut the process group down. After a run every rank ``finished``, the ranks first meet
    at a barrier, so no rank tears down its gloo/NCCL threads while a peer still talks to it
    (a gloo rank that exits mid-conversation can abort with SIGABRT, "terminate called without
    an active exception"); after an error there is no barrier (the peers may be gone)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if finished:
            barrier()
    finally:
        dist.destroy_process_group()


def device_for(device: torch.device) -> torch.device:
    """``cuda`` without an index becomes ``cuda:LOCAL_RANK`` in a distributed run."""
    if is_distributed() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def convert_sync_bn(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers as ``SyncBatchNorm`` (batch statistics over the global batch); the
    parameters and buffers are the same tensors, so their names do not change."""
    if not is_distributed():
        return model  # one process: SyncBatchNorm would be plain BatchNorm
    if device.type != "cuda":
        raise UserError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm does not run "
                        "on the CPU); drop --sync-bn or train on GPUs")
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` (or itself in one process)."""
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # no buffer broadcast before every forward (newer PyTorch renamed the switch)
    key = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters
           else "broadcast_buffers")
    return ddp(model, device_ids=ids, **{key: False})


def local_loss_scale(n_local: int, n_global: int) -> float:
    """The factor on a rank's mean loss that makes DDP's averaged gradient the global mean's."""
    return world_size() * n_local / max(n_global, 1)


@torch.no_grad()
def sync_buffers(model: nn.Module) -> None:
    """Floating buffers (BatchNorm running statistics) averaged over the ranks."""
    average_floats_(b for _, b in model.named_buffers())


@torch.no_grad()
def broadcast_state(model: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (after a start that changed weights)."""
    if is_distributed():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)
