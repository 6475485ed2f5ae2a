"""``--nproc N``: data-parallel training in N processes on this machine, started by spikesculpt.

The same as ``torchrun --nproc-per-node N -m spikesculpt COMMAND ...`` without torchrun: the
command line is run again (without ``--nproc``) in N child processes whose environment holds
what torchrun would set — ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR=127.0.0.1`` and a free ``MASTER_PORT`` — so both paths meet in the same code
(``train/distributed.py: init_from_env``). Rank 0 prints and writes the run directory.

If a child fails (an error, a kill, out of memory), the others are stopped (SIGTERM, then
SIGKILL after ``STOP_GRACE_S``) and one line says which rank failed how; every finished epoch is
in the run's checkpoint, so the same command with ``--resume`` continues. Bad input (exit
status 2) is left to rank 0's own one-line error.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from spikesculpt.core.errors import UserError
from spikesculpt.core.options import positive_int

FLAG = "--nproc"
DISTRIBUTED_COMMANDS = ("train", "compare", "lottery", "evolve")  # evolve: its final training
POLL_S = 0.1
STOP_GRACE_S = 10.0
SETTLE_S = 1.0  # after a first failure: time for the rank that caused it to report too
USER_ERROR = 2  # the exit status of bad input (``UserError``), the same on every rank


def add_nproc_flag(p, what: str = "training") -> None:
    """The one declaration of ``--nproc`` (train, compare, lottery; evolve: ``what`` = its
    final training)."""
    p.add_argument(FLAG, type=positive_int, default=None, metavar="N",
                   help=f"data-parallel {what} in N processes on this machine "
                        "(torch.distributed: gloo on CPUs, NCCL on GPUs; the same as torchrun "
                        "--nproc-per-node N; docs/distributed.md)")


def refuse_nested() -> None:
    """``--nproc`` inside a torchrun launch is a one-line ``UserError``."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        raise UserError("--nproc inside a torchrun launch: use one of them (drop --nproc)")


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` with ``--nproc N`` / ``--nproc=N`` removed."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a == FLAG:
            skip = True
        elif not a.startswith(FLAG + "="):
            out.append(a)
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(rank: int, world: int, port: int) -> dict:
    env = dict(os.environ)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
               LOCAL_WORLD_SIZE=str(world), GROUP_RANK="0", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port))
    return env


def launch(argv: list[str], nproc: int) -> int:
    """Run ``spikesculpt argv`` in ``nproc`` processes; 0 when all succeed, else the first
    failure's status (after one line on stderr)."""
    refuse_nested()
    port = free_port()
    command = [sys.executable, "-m", "spikesculpt", *without_nproc(argv)]
    procs = [subprocess.Popen(command, env=child_env(r, nproc, port)) for r in range(nproc)]
    try:
        failed = _wait_for_failure(procs)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    if failed is None:
        return 0
    time.sleep(SETTLE_S)
    _stop(procs)
    if procs[failed].returncode == USER_ERROR:  # bad input: rank 0 said it in one line
        return USER_ERROR
    others = [r for r in range(nproc) if r != failed
              and procs[r].returncode not in (0, None, -signal.SIGTERM, -signal.SIGKILL)]
    lines = [f"rank {r} {_how(procs[r].returncode)}" for r in [failed, *others]]
    print(f"spikesculpt: error: {'; '.join(lines)} — the run stopped (the other ranks were "
          f"stopped); every finished epoch is saved: rerun the same command with --resume",
          file=sys.stderr)
    code = procs[failed].returncode
    return code if code and code > 0 else 1


def _wait_for_failure(procs) -> int | None:
    """Wait until all exit (None) or one fails (its rank)."""
    while True:
        codes = [p.poll() for p in procs]
        bad = [r for r, c in enumerate(codes) if c not in (None, 0)]
        if bad:
            killed = [r for r in bad if codes[r] < 0]  # a signal: the cause, not a consequence
            return (killed or bad)[0]
        if all(c == 0 for c in codes):
            return None
        time.sleep(POLL_S)


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _how(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed ({name})"
    return f"exited with status {code}"
