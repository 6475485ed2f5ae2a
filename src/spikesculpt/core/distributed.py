"""The pure helpers of data-parallel training (``torch.distributed``), for every floor.

A run is *distributed* when a process group is initialised with more than one process (``torchrun``
or ``--nproc N``; ``train/distributed.py`` starts the group). Then every process — a *rank* —
runs the same program on the same data stream and trains on its slice of each global batch; the
helpers here are what a part needs to stay in step with the others:

- ``is_distributed()``, ``rank()``, ``world_size()``, ``is_main()`` (rank 0: the only writer of
  the run directory); one process: False, 0, 1, True;
- ``local_slice(n)``: this rank's ``slice`` of a global batch of ``n`` samples — contiguous and
  balanced, ``[r·n // W, (r+1)·n // W)``, so the slices cover the batch once, in order;
- ``all_reduce_sum_`` / ``all_reduce_dict_`` / ``average_floats_``: sums (or means) over the ranks,
  in place; no-ops in one process;
- ``broadcast_object(obj)``: rank 0's picklable object on every rank (a decision made once);
  ``from_main(read)``: ``read()`` run on rank 0 alone and its value (or its error) on every rank;
- ``check_identical(tensors, what)``: the consistency check of masks — a checksum of every tensor
  all-reduced with MIN and MAX; a difference raises ``DivergedError`` naming the first tensor that
  differs. Off unless ``checks_enabled()`` (env ``SPIKESCULPT_CHECK_MASKS=1``), because it costs
  two all-reduces of 3 float64 per tensor and a synchronisation at every mask update.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import torch
import torch.distributed as dist

from spikesculpt.core.errors import UserError

CHECK_ENV = "SPIKESCULPT_CHECK_MASKS"  # "1": checksum every mask after every update


class DivergedError(RuntimeError):
    """The ranks of a distributed run hold different masks (a bug, never bad input)."""


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (and in a plain one-process run): the process that writes files."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def local_slice(n: int, rank_: int | None = None, world: int | None = None) -> slice:
    """This rank's part ``[r·n // W, (r+1)·n // W)`` of a global batch of ``n`` samples."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return slice(r * n // w, (r + 1) * n // w)


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the ranks, in place (returned)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_dict_(tensors: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """Every tensor of ``tensors`` summed over the ranks, in place (sorted names: the same order
    on every rank). All ranks must hold the same names and shapes."""
    for name in sorted(tensors):
        all_reduce_sum_(tensors[name])
    return tensors


def sum_numbers(*values: float) -> list[float]:
    """Python numbers summed over the ranks (one float64 all-reduce)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    return all_reduce_sum_(t).tolist()


def average_floats_(tensors: Iterable[torch.Tensor]) -> None:
    """Floating tensors (e.g. BatchNorm running statistics) replaced by their mean over the
    ranks; other dtypes are left alone."""
    if not is_distributed():
        return
    for t in tensors:
        if t.is_floating_point():
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t.div_(dist.get_world_size())


def broadcast_object(obj):
    """Rank 0's ``obj`` (picklable) on every rank."""
    if not is_distributed():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def checks_enabled() -> bool:
    return os.environ.get(CHECK_ENV, "") not in ("", "0")


def checksum(t: torch.Tensor) -> torch.Tensor:
    """``[Σ x, Σ i·x, Σ i²·x]`` (float64) of a tensor flattened to ``x`` with positions ``i``:
    equal for equal tensors; a moved connection changes the 2nd and 3rd."""
    x = t.detach().reshape(-1).to(torch.float64)
    i = torch.arange(1, x.numel() + 1, dtype=torch.float64, device=x.device) / max(x.numel(), 1)
    return torch.stack([x.sum(), (i * x).sum(), (i * i * x).sum()]).cpu()


def check_identical(tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise ``DivergedError`` when a tensor of ``tensors`` differs between ranks (checksums;
    a no-op in one process). Every rank must call it at the same point."""
    if not is_distributed():
        return
    names = sorted(tensors)
    sums = torch.stack([checksum(tensors[n]) for n in names]) if names else torch.zeros(0, 3)
    low, high = sums.clone(), sums.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    differs = [n for n, lo, hi in zip(names, low, high) if not torch.equal(lo, hi)]
    if differs:
        raise DivergedError(f"{what}: {differs[0]} differs between the ranks "
                            f"({len(differs)} tensor(s) in all); the masks diverged")


def from_main(read):
    """``read()`` run on rank 0 and its value sent to every rank (just ``read()`` in one
    process); an exception there is raised on every rank (a ``UserError`` with its line on the
    others), so no rank waits for a value that never comes."""
    if not is_distributed():
        return read()
    value = failure = None
    if is_main():
        try:
            value = ("ok", read())
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
            failure, value = exc, ("error", str(exc))
    kind, payload = broadcast_object(value)
    if kind == "error":
        raise failure if failure is not None else UserError(payload)
    return payload
