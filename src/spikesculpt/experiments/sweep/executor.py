"""Where the cells of a sweep run: a small interface, so that other engines plug in here.

    class Executor(Protocol):
        workers: int
        def run(self, fn, items) -> Iterator[Done]: ...

``run`` calls ``fn(item)`` once for every item and yields a :class:`Done` per item *as each
finishes* (any order; ``Done.index`` is the item's position). ``fn`` and the items must be
picklable (a module-level function, dataclasses of plain values) so that they can travel to
another process or machine. An exception raised by ``fn`` (or a worker that died) is yielded as
``Done.error``, never raised, so the other items go on; only ``KeyboardInterrupt`` stops
``run`` (pending items are cancelled). Two items must not write the same run directory at the
same time; the sweep gives distinct cells, and the run directory's lock guards the rest.

``LocalExecutor(workers=1)`` runs in this process, one item after the other (the caller's torch
thread count is kept). ``workers > 1``: a process pool on this machine, started with the
``spawn`` context (torch and ``fork`` do not mix: a forked child inherits the parent's thread
pools and locks), each worker limited to ``threads_per_worker`` torch threads (default
``max(1, cpu_count // workers)``) so that the workers do not oversubscribe the cores.

``RayExecutor``: one Ray task per item on a local Ray instance or a cluster
(``experiments.backend.RayCluster``: ``ray.remote`` per item, ``ray.wait`` to yield them as they
finish, a task whose worker died rerun by Ray, GPUs as Ray resources). ``make_executor`` picks
one from ``--backend`` / ``--address`` / ``--gpus-per-task`` / ``--workers``.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

import torch

from spikesculpt.core.errors import UserError
from spikesculpt.experiments.backend import BackendOptions, RayCluster, default_threads


@dataclass
class Done:
    """One finished item: its position in the input, ``fn``'s value or the error it raised."""

    index: int
    value: Any = None
    error: Optional[BaseException] = None


class Executor(Protocol):
    """Runs ``fn`` over items (see the module doc for the contract)."""

    workers: int

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Done]:
        ...


def _set_threads(threads: int) -> None:
    """Process-pool initializer: limit this worker's torch (intra-op) threads."""
    torch.set_num_threads(threads)


class LocalExecutor:
    """``workers`` = 1: in this process; > 1: a ``spawn`` process pool (module doc)."""

    def __init__(self, workers: int = 1, threads_per_worker: Optional[int] = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise UserError(f"workers must be a positive integer, got {workers!r}; pass e.g. "
                            f"--workers 2")
        self.workers = workers
        self.threads_per_worker = threads_per_worker or default_threads(workers)

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Done]:
        if self.workers == 1:
            yield from self._in_process(fn, items)
            return
        yield from self._in_pool(fn, items)

    @staticmethod
    def _in_process(fn, items) -> Iterator[Done]:
        for index, item in enumerate(items):
            try:
                yield Done(index, fn(item))
            except Exception as exc:  # noqa: BLE001 - reported per item; the others go on
                yield Done(index, error=exc)

    def _in_pool(self, fn, items) -> Iterator[Done]:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(items)),
                                   mp_context=context, initializer=_set_threads,
                                   initargs=(self.threads_per_worker,))
        try:
            pending = {pool.submit(fn, item): i for i, item in enumerate(items)}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    try:
                        yield Done(index, future.result())
                    except Exception as exc:  # noqa: BLE001 - incl. a worker that died
                        yield Done(index, error=exc)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


class RayExecutor:
    """One Ray task per item (``RayCluster.run``), each reserving ``num_gpus`` GPUs; ``workers``:
    the tasks that can run at once (the cluster's CPUs)."""

    def __init__(self, cluster: RayCluster, num_gpus: float = 0.0):
        self.cluster = cluster
        self.num_gpus = num_gpus
        self.workers = cluster.workers

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Done]:
        for index, value, error in self.cluster.run(fn, items, self.num_gpus):
            yield Done(index, value, error)

    def close(self) -> None:
        self.cluster.close()


def make_executor(options: BackendOptions, workers: int = 1, device: str = "auto") -> Executor:
    """``LocalExecutor(workers)`` for ``--backend local``; for ``ray``, a ``RayExecutor`` on
    the cluster at ``options.address`` (none: a local Ray instance with ``workers`` CPUs), each
    task reserving the GPUs a run on ``device`` needs (``RayCluster.gpus_for``). One-line
    ``UserError`` when Ray is missing or the cluster cannot be reached."""
    options.validate()
    if options.backend == "local":
        return LocalExecutor(workers)
    cluster = RayCluster.connect(options, workers)
    return RayExecutor(cluster, cluster.gpus_for(device))


def close_executor(executor: Executor) -> None:
    """Release what ``executor`` holds (a Ray connection); a local executor holds nothing."""
    close = getattr(executor, "close", None)
    if close is not None:
        close()
