"""Entry point of the ``spikesculpt`` command.

Bad input (``UserError``) ends with one line on stderr and exit status 2, no traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings

import torch.distributed as dist

from spikesculpt.cli import (
    compare,
    evaluate,
    evolve,
    export,
    listing,
    lottery,
    report,
    show_data,
    sweep,
    train,
)
from spikesculpt.cli.launch import DISTRIBUTED_COMMANDS, launch
from spikesculpt.cli.parser import OneLineParser
from spikesculpt.core.distributed import is_main
from spikesculpt.core.errors import UserError
from spikesculpt.train.distributed import init_from_env, launched_distributed, shutdown


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="spikesculpt",
        description="Efficient spiking neural networks: train, compare, measure.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for module in (train, compare, sweep, report, evolve, evaluate, export, listing,
                   lottery, show_data):
        module.add_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"spikesculpt: warning: {message}", file=file or sys.stderr)


def _out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError, or the allocator's RuntimeError on the CPU."""
    text = str(exc)
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in text
                                           or "out of memory" in text.lower()))


def _system_error_line(exc: OSError) -> str:
    """One line for a file-system error: which path, what the system said, what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        fix = "free some space or write elsewhere (--out / --runs-root)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a writable place (--out / --runs-root) or fix the permissions"
    elif exc.errno == errno.EISDIR:
        fix = "pass a file name, not a folder"
    elif exc.errno == errno.ENOTDIR:
        fix = "a part of the path is a file, not a folder: choose another path"
    else:
        fix = "check the path"
    return f"{where}{what}; {fix}"


def _env_rank() -> str:
    """This process's rank as torchrun / --nproc set it ("0" in a plain run); read from the
    environment, which outlives the process group."""
    return os.environ.get("RANK", "0") if launched_distributed() else "0"


def _lost_peer(exc: BaseException) -> bool:
    """A collective failed because another rank died, hung past the timeout or the network
    dropped (torch.distributed's errors, gloo's and NCCL's messages)."""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc).lower()
    return launched_distributed() and any(
        k in text for k in ("connection closed", "connection reset", "timed out", "timeout",
                            "broken pipe", "gloo", "nccl"))


def _run_distributed(args) -> int:
    """Run the command as one rank of a torchrun (or ``--nproc``) launch: start the process
    group, keep the other ranks quiet (rank 0 prints), shut the group down."""
    if args.command not in DISTRIBUTED_COMMANDS:
        raise UserError(f"'spikesculpt {args.command}' does not run distributed; launch "
                        f"{', '.join(DISTRIBUTED_COMMANDS)} with torchrun / --nproc, or run "
                        f"{args.command} in one process")
    init_from_env()
    finished = False
    try:
        if not is_main():
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - one report: rank 0's
            warnings.simplefilter("ignore")
        status = args.func(args)
        finished = True
        return status
    finally:
        shutdown(finished)


def main(argv: list[str] | None = None) -> int:

    warnings.showwarning = _one_line_warning  # warnings of a CLI run: one line each, no source
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a sweep records
    try:
        if getattr(args, "nproc", None) and args.nproc > 1:
            start = getattr(args, "launch", None)  # evolve: its search first, in this process
            return start(args) if start else launch(args.argv, args.nproc)  # N children
        return _run_distributed(args) if launched_distributed() else args.func(args)
    except UserError as exc:
        if _env_rank() != "0":
            return 2  # a distributed run: rank 0 says it
        print(f"spikesculpt: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only file system, permissions, a folder where a file goes...
        print(f"spikesculpt: error: {_system_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikesculpt: interrupted; every finished epoch is saved — continue with the "
              "same command plus --resume", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:
        if _lost_peer(exc):
            print(f"spikesculpt: error: rank {_env_rank()}: lost contact with the other ranks ("
                  + " ".join(str(exc).split())[:120] + "); the run stopped — every finished "
                  "epoch is saved: rerun the same command with --resume", file=sys.stderr)
            return 3
        if not _out_of_memory(exc):
            raise
        print("spikesculpt: error: out of memory (" + " ".join(str(exc).split())[:120]
              + "); reduce --batch-size, --timesteps or the model's size", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
