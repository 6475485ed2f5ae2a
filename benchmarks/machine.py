"""What every benchmark records about the machine and the code it ran on (imported by the scripts
here): CPU / GPU, threads, library versions, git commit, date and the command line."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

from spikesculpt.core.machine import cpu_name  # noqa: F401  (one reader of the CPU model)

REPO = Path(__file__).resolve().parent.parent


def slug(text: str) -> str:
    """A file-name-safe lower-case form of ``text`` (at most 40 characters)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def git_state(repo: Path = REPO) -> dict:
    """``{"commit": full hash or "unknown", "dirty": True if tracked files differ from it}``.
    Where the tree is a copy without git (a lent GPU machine), ``SPIKESCULPT_GIT_COMMIT`` names
    the commit it was copied from."""
    if os.environ.get("SPIKESCULPT_GIT_COMMIT"):
        return {"commit": os.environ["SPIKESCULPT_GIT_COMMIT"], "dirty": False}
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=20, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": dirty}


def provenance(threads: int, device: str = "cpu") -> dict:
    """Where, when, with what code and by which command a benchmark ran (JSON-serialisable)."""
    import torch

    gpu = None
    if str(device).startswith("cuda") and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(device))
    git = git_state()
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpu": gpu, "device": str(device),
            "torch_threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "git_commit": git["commit"], "git_dirty": git["dirty"],
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": shlex.join([Path(sys.executable).name, *sys.argv])}


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
                "asimd", "sve", "sve2")


def vector_extensions() -> list[str]:
    """The CPU's SIMD extensions that matter for the kernels (from /proc/cpuinfo's flags)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [x for x in VECTOR_FLAGS if x in have]
    except OSError:
        pass
    return []


def blas() -> dict:
    """PyTorch's BLAS, oneDNN and the CPU capability its kernels dispatch to."""
    import torch

    config = torch.__config__.show()
    info = re.search(r"BLAS_INFO=([^,\s]+)", config)
    onednn = re.search(r"MKL-DNN v([0-9.]+)", config)
    return {"blas": info.group(1) if info else "unknown",
            "onednn": onednn.group(1) if onednn else None,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def result_stem(out_dir, prefix: str, meta: dict) -> Path:
    """``out_dir/<prefix>_<machine>_<threads>t_<date>_<commit>``: the tag every result file of
    a benchmark carries (machine = the GPU's name when one was used, else the CPU's)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    commit = (meta.get("git_commit") or "unknown")[:7] + ("-dirty" if meta.get("git_dirty") else "")
    machine = slug(meta.get("gpu") or meta["cpu"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{prefix}_{machine}_{meta['torch_threads']}t_{stamp}_{commit}"


def device_missing(device: str) -> str | None:
    """Why ``device`` cannot be used here (``"skipped: CUDA not available"``), or None."""
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return "skipped: CUDA not available"
    return None
