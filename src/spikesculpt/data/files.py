"""Finding and reading a dataset's files under ``--data-root``: the folder check, folder and
file names in any letter case, files of folders and members of zip archives read with errors
that name the file and the fix, and a cheap fingerprint of the sources (names, sizes,
modification times) for cache keys. Shared by every reader in ``data/sets/``.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from spikesculpt.core.errors import UserError


def require_data_root(dataset: str, data_root: Optional[str], expected: str) -> Path:
    """``--data-root`` as a ``Path``; a ``UserError`` saying what to pass if it is missing."""
    if not data_root:
        raise UserError(f"{dataset} is read from disk: pass --data-root DIR, the folder that "
                        f"holds {expected} (see README, 'Datasets')")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder; pass the folder that holds "
                        f"{expected}")
    return root


def find_dataset_dir(root: Path, names: Sequence[str], looks_right: Callable[[Path], bool]
                     ) -> Optional[Path]:
    """``root/NAME`` for the first of ``names`` (any letter case) that ``looks_right``, else
    ``root`` itself if it does, else None."""
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()} if root.is_dir() else {}
    for name in names:
        cand = children.get(name.lower())
        if cand is not None and looks_right(cand):
            return cand
    return root if looks_right(root) else None


def child(folder: Path, name: str, want_dir: Optional[bool] = None) -> Optional[Path]:
    """The entry of ``folder`` called ``name`` in any letter case (a dir / a file if asked)."""
    if not folder.is_dir():
        return None
    for p in sorted(folder.iterdir()):
        if p.name.lower() == name.lower():
            if want_dir is None or p.is_dir() == want_dir:
                return p
    return None


def fingerprint(paths: Iterable[Path], base: Path) -> str:
    """SHA-256 over ``(path relative to base, size, mtime_ns)`` of every file: changes when a
    file is added, removed, replaced or edited (cheap: no file is read)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.relative_to(base)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or type(exc).__name__}); check the "
                        f"file's permissions or download it again") from None


class ZipReader:
    """Members of a zip archive, read without extracting; errors name the archive."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path} is not a readable zip archive ({type(exc).__name__}); the "
                            f"download is incomplete or corrupt: download it again") from None

    def names(self) -> list[str]:
        return [i.filename for i in self.zip.infolist() if not i.is_dir()]

    def read(self, member: str) -> bytes:
        try:
            return self.zip.read(member)
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise UserError(f"{self.path}:{member} cannot be read ({exc}); the archive is "
                            f"corrupt: download it again") from None

    def close(self) -> None:
        self.zip.close()


def walk_files(folder: Path, suffix: str) -> list[Path]:
    """Files under ``folder`` (recursively) whose name ends with ``suffix`` (any case), sorted."""
    out = []
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if f.lower().endswith(suffix) and not f.startswith("."):
                out.append(Path(dirpath) / f)
    return sorted(out)
