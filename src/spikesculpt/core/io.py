"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A crash or Ctrl-C mid-write leaves the previous file intact, never a half-written one. The file
gets the permissions any new file of the process gets (``0o666`` less the umask), not the
``0o600`` of ``tempfile.mkstemp``.

In a distributed run only rank 0 writes: on the other ranks ``atomic_write`` (and so every
helper here) does nothing and returns the path. Every rank runs the same program, so rank 0
writes what one process would; a rank that reads a file rank 0 wrote waits for it at a barrier
first (``core.distributed.barrier``) where the read could come before the write.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import yaml

from spikesculpt.core.distributed import is_main


def _new_file_mode() -> int:
    """``0o666`` less the process umask (read without changing it where /proc tells it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then move the temp file onto ``path`` atomically (on rank 0
    only, in a distributed run)."""
    path = Path(path)
    if not is_main():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, write)


def write_json(path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_yaml(path, data) -> Path:
    return write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_csv(path, rows: Iterable[dict]) -> Path:
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buf.getvalue())
