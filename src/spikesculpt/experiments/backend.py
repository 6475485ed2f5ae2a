"""Where the embarrassingly parallel work runs: ``local`` (this machine) or ``ray`` (a Ray cluster).

    options = BackendOptions(backend="ray", address="auto")   # --backend ray --address auto
    cluster = RayCluster.connect(options, workers=2)          # one-line UserError if it cannot
    for index, value, error in cluster.run(fn, items, num_gpus=1): ...
    cluster.close()

``BackendOptions`` declares the flags once (``--backend``, ``--address``, ``--gpus-per-task``);
``spikesculpt sweep`` (cells) and ``spikesculpt evolve`` (the candidates of a generation) take
them. ``RayCluster`` is the one place that talks to Ray:

- connecting: no address starts a local Ray instance with ``workers`` CPUs (no dashboard, Ray's
  own logging at ERROR); an address (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) joins a
  running cluster, after a TCP probe of ``HOST:PORT`` (``ray.init`` itself retries an
  unreachable address for minutes). An already connected process (``ray.init`` called by the
  caller) is used as it is and left connected;
- ``run(fn, items, num_gpus)``: one Ray task per item, ``fn(item)`` with the task's torch thread
  count set first (local: ``default_threads(workers)``, as the local process pool; a cluster:
  one thread per task, one Ray CPU each), results yielded as they finish (``ray.wait``). GPUs are
  Ray resources: a task reserving ``num_gpus`` (a fraction packs several tasks on one GPU) runs
  where one is free and sees only its own (Ray sets ``CUDA_VISIBLE_DEVICES``);
- a lost worker (its process or machine died): Ray reruns the task, up to ``MAX_RETRIES``
  times (``max_retries``; an exception raised by ``fn`` is not retried: it is the item's error).
  What finished before lives in the run directories, so a rerun of the whole command skips it.

``fn`` and the items must be picklable by reference (module-level functions, dataclasses of plain
values), and every machine must run the same spikesculpt and reach the same run directories
(a shared file system) — see docs/ray.md.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import torch

from spikesculpt.core.errors import UserError
from spikesculpt.core.options import option

BACKENDS = ("local", "ray")
MAX_RETRIES = 3            # reruns of a task whose worker died (Ray's ``max_retries``)
PROBE_SECONDS = 5.0        # TCP probe of a cluster address before ray.init
RAY_EXTRA = "pip install 'spikesculpt[ray]'"


def _backend_names() -> tuple[str, ...]:
    return BACKENDS


@dataclass
class BackendOptions:
    """Where cells / candidates run (the flags of sweep and evolve; docs/ray.md)."""

    backend: str = option("local", help="where the cells / candidates run (ray: a Ray cluster, "
                          + RAY_EXTRA + ")", choices=_backend_names,
                          kind="backend", metavar="NAME")
    address: Optional[str] = option(None, help="--backend ray: the cluster to join (auto, "
                                    "HOST:PORT or ray://HOST:PORT)", metavar="ADDR",
                                    none_means="a Ray instance on this machine with --workers "
                                    "CPUs")
    gpus_per_task: Optional[float] = option(None, help="--backend ray: GPUs each cell / "
                                            "candidate reserves (0.5: two per GPU)",
                                            metavar="G", none_means="1 with --device cuda, "
                                            "else 1 where the cluster has GPUs and --device is "
                                            "auto, else 0")

    def validate(self) -> "BackendOptions":
        if self.backend not in BACKENDS:
            raise UserError(f"unknown backend {self.backend!r}; choose one of: "
                            f"{', '.join(BACKENDS)} (e.g. --backend ray)")
        for name, value in (("--address", self.address), ("--gpus-per-task", self.gpus_per_task)):
            if value is not None and self.backend != "ray":
                raise UserError(f"{name} is an option of the Ray backend; add --backend ray "
                                f"(or drop {name})")
        g = self.gpus_per_task
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float))
                              or not math.isfinite(g) or g < 0):
            raise UserError(f"--gpus-per-task must be a number >= 0, got {g!r}; pass e.g. "
                            f"--gpus-per-task 1")
        if self.address is not None and not str(self.address).strip():
            raise UserError("--address is empty; pass e.g. --address auto or --address "
                            "HOST:6379")
        return self


def default_threads(workers: int) -> int:
    """Torch threads per worker on this machine: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def import_ray():
    """The ``ray`` module, or a one-line ``UserError`` naming the extra."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs Ray, an optional extra: {RAY_EXTRA} (or use "
                        f"--backend local)") from None
    return ray


def probe_address(address: str, seconds: float = PROBE_SECONDS) -> None:
    """A one-line ``UserError`` unless ``address`` is ``auto`` (the cluster this machine
    joined: Ray finds it, or says at once that there is none) or a ``HOST:PORT`` (or
    ``ray://HOST:PORT``) that accepts a TCP connection within ``seconds``."""
    if address == "auto":
        return
    scheme, _, text = address.rpartition("://")
    host, _, port = text.rpartition(":")
    if scheme not in ("", "ray") or not port.isdigit() or not host:
        raise UserError(f"--address {address!r} is not HOST:PORT; pass e.g. --address auto or "
                        f"--address 10.0.0.1:6379 (what `ray start --head` printed)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        raise UserError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start "
                        f"one with `ray start --head` or check --address") from None


def _call_with_threads(fn: Callable[[Any], Any], threads: int, item: Any) -> Any:
    """What every Ray task runs: ``fn(item)`` at ``threads`` torch threads."""
    torch.set_num_threads(threads)
    return fn(item)


class RayCluster:
    """A connection to Ray (see the module doc). Build it with :meth:`connect`."""

    def __init__(self, ray, local: bool, owned: bool, workers: int,
                 gpus_per_task: Optional[float] = None):
        self.ray = ray
        self.local = local            # a Ray instance on this machine (no --address)
        self.owned = owned            # started (or joined) here: close() disconnects
        self.threads = default_threads(workers) if local else 1
        self.gpus_per_task = gpus_per_task
        self._remote = ray.remote(_call_with_threads)

    @classmethod
    def connect(cls, options: BackendOptions, workers: int = 1) -> "RayCluster":
        """Join ``options.address``, or start a local instance with ``workers`` CPUs; an
        already connected process is used as it is."""
        ray = import_ray()
        options.validate()
        local = options.address is None
        if not local:
            probe_address(options.address)
        owned = not ray.is_initialized()
        if owned:
            if local:
                ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR")
            else:
                try:
                    ray.init(address=options.address, logging_level="ERROR")
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    line = " ".join(str(exc).split())[:200].rstrip(".")
                    raise UserError(f"cannot join the Ray cluster at {options.address}: {line}; "
                                    f"start one with `ray start --head` or check --address") \
                        from None
        return cls(ray, local, owned, workers, options.gpus_per_task)

    @property
    def workers(self) -> int:
        """Tasks that can run at once: the cluster's CPUs (one per task)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def gpus_for(self, device: str) -> float:
        """GPUs per task for a run on ``device``: ``--gpus-per-task`` if given, else 1 for a
        cuda device, or for ``auto`` where the cluster has GPUs, else 0."""
        if self.gpus_per_task is not None:
            return float(self.gpus_per_task)
        if str(device).startswith("cuda"):
            return 1.0
        has_gpus = self.ray.cluster_resources().get("GPU", 0) > 0
        return 1.0 if device == "auto" and has_gpus else 0.0

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any],
            num_gpus: float = 0.0) -> Iterator[tuple[int, Any, Optional[BaseException]]]:
        """``(index, fn(item), None)`` or ``(index, None, error)`` per item, as each task
        finishes; an interrupt (or closing the iterator) cancels the tasks still pending."""
        remote = self._remote.options(num_cpus=1, num_gpus=num_gpus, max_retries=MAX_RETRIES,
                                      retry_exceptions=False)
        pending = {remote.remote(fn, self.threads, item): i for i, item in enumerate(items)}
        try:
            while pending:
                ready, _ = self.ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index = pending.pop(ref)
                    try:
                        yield index, self.ray.get(ref), None
                    except self.ray.exceptions.RayTaskError as exc:   # fn raised
                        yield index, None, exc.cause or exc
                    except self.ray.exceptions.RayError as exc:       # retries used up, ...
                        yield index, None, exc
        finally:
            for ref in pending:
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        """Disconnect (shut a local instance down) if this object connected."""
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
        self.owned = False
