"""What a sweep records about each time it ran (an *invocation*), for the report's header.

cells.json keeps the list ``invocations`` (every run of the sweep command on this folder, the
earlier ones read back from the previous cells.json), each::

    {"command": "spikesculpt sweep --methods dense,esl ...", "started": ISO time,
     "wall_seconds": 12.3, "workers": 2, "torch_threads": 1, "machine": {cpu, cores,
     logical_cpus, platform}, "commit": git HEAD or None, "spikesculpt": "0.1.0",
     "torch": "2.x", "counts": {status: n}}

sweep.yaml records the command that created the sweep (``command``; absent in folders made
before it was recorded).
"""

from __future__ import annotations

import datetime as _dt
import shlex
import sys
from pathlib import Path
from typing import Optional

import torch

from spikesculpt.core.machine import machine_info
from spikesculpt.core.version import __version__
from spikesculpt.experiments.sweep.sweep_dir import source_commit


def default_command() -> str:
    """The command line of this process (for ``run_sweep`` called from a script)."""
    return shlex.join([Path(sys.executable).name, *sys.argv])


def cli_command(argv: list[str]) -> str:
    """``spikesculpt <argv>``, quoted so that it can be pasted into a shell."""
    return shlex.join(["spikesculpt", *argv])


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def invocation(command: Optional[str], started: str, wall_seconds: float, workers: int,
               counts: dict) -> dict:
    """One run of the sweep (see the module doc)."""
    return {"command": command or default_command(), "started": started,
            "wall_seconds": round(wall_seconds, 3), "workers": workers,
            "torch_threads": torch.get_num_threads(), "machine": machine_info(),
            "commit": source_commit(), "spikesculpt": __version__, "torch": torch.__version__,
            "counts": dict(counts)}
