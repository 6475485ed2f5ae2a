"""Compile a small C source with the system compiler on first use, cache it, load it with ctypes.

Shared by the native kernels (``neurons/cpu_kernel.py``: the fused neuron time loop;
``inference/cpu_kernel.py``: the sparse-inference kernels). No PyTorch headers, no build step at install
time: the source is compiled once per machine with ``$CC`` (else ``cc``/``gcc``/``clang``) into
``$SPIKESCULPT_CACHE_DIR/native`` (default ``~/.cache/spikesculpt/native``), keyed by a hash of
source, flags, compiler version and CPU (the builds use ``-march=native``). Builds are staged and
renamed atomically, so concurrent first uses are harmless. Flag sets are tried from the most to
the least demanding (``-march=native -fopenmp``, then without OpenMP / native tuning), so a
compiler without OpenMP still gives a single-threaded kernel. ``load`` wraps build, self-test
and status: any failure gives one warning and ``None``, and the caller falls back to its
PyTorch path; ``NativeKernel`` is the lazy, thread-safe holder each kernel module keeps
(``KERNEL``: its ``library()``, ``available()``, ``status()`` and ``lib``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from typing import Callable, Optional, Sequence

BASE_FLAGS = ("-O2", "-ftree-vectorize", "-fvect-cost-model=dynamic", "-fno-trapping-math",
              "-shared", "-fPIC", "-std=c99")


def cache_dir() -> str:
    """``$SPIKESCULPT_CACHE_DIR/native`` or ``~/.cache/spikesculpt/native``; if that is not
    writable, a private (0700, owned by us) directory under the system temp dir."""
    d = os.environ.get("SPIKESCULPT_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "spikesculpt")
    d = os.path.join(d, "native")
    try:
        os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = os.path.join(tempfile.gettempdir(), f"spikesculpt-{os.getuid()}")
    os.makedirs(d, mode=0o700, exist_ok=True)
    st = os.stat(d)
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        # someone else could plant a library there: refuse
        raise RuntimeError(f"no safe cache directory ({d} is not private); "
                           "set SPIKESCULPT_CACHE_DIR")
    return d


def cpu_signature() -> str:
    """CPU model and feature flags: the cache key for a ``-march=native`` build."""
    keep = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # first processor block only
                if line.startswith(("flags", "Features", "model name", "CPU part")):
                    keep.append(line.strip())
    except OSError:
        pass
    return "\n".join(keep) or (platform.processor() + platform.machine())


def compiler() -> Optional[str]:
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return cand
    return None


def native_arch_flags() -> list[str]:
    machine = platform.machine().lower()
    return (["-march=native"] if machine in ("x86_64", "amd64")
            else ["-mcpu=native"] if machine in ("aarch64", "arm64") else [])


def build(name: str, source: str, extra_flags: Sequence[str] = ()) -> ctypes.CDLL:
    """Compile ``source`` (C99) into ``<cache>/<name>_<hash>.so`` unless cached; load it.

    ``extra_flags`` are added to ``BASE_FLAGS`` (e.g. ``-ffp-contract=off``). Raises
    ``RuntimeError`` when no compiler is found or every flag set fails.
    """
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC)")
    base_flags = [*BASE_FLAGS, *extra_flags]
    arch = native_arch_flags()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    cache = cache_dir()
    last_err = ""
    for extra in (arch + ["-fopenmp"], arch, ["-fopenmp"], []):
        flags = base_flags + extra
        key = hashlib.sha256("\n".join([source, " ".join(flags), version, cpu_signature(),
                                        sys.platform]).encode()).hexdigest()[:16]
        path = os.path.join(cache, f"{name}_{key}.so")
        if not os.path.exists(path):
            with tempfile.TemporaryDirectory() as tmp:
                src = os.path.join(tmp, f"{name}.c")
                with open(src, "w") as f:
                    f.write(source)
                out = os.path.join(tmp, f"{name}.so")
                proc = subprocess.run([cc, *flags, src, "-o", out, "-lm"], capture_output=True,
                                      text=True, timeout=300)
                if proc.returncode != 0:
                    last_err = (proc.stderr.strip().splitlines()[-1:] or [""])[0]
                    continue
                fd, staged = tempfile.mkstemp(dir=cache, suffix=".so.tmp")
                os.close(fd)
                shutil.copyfile(out, staged)
                os.replace(staged, path)  # atomic: concurrent builders are harmless
        return ctypes.CDLL(path)
    raise RuntimeError(f"compiling the native {name} kernel failed: {last_err}")


def disabled_by_env() -> bool:
    """``SPIKESCULPT_NATIVE=0`` (or false/no/off) switches every native kernel off."""
    return os.environ.get("SPIKESCULPT_NATIVE", "1").strip().lower() in ("0", "false", "no", "off")


def load(what: str, make: Callable[[], ctypes.CDLL], check: Callable[[ctypes.CDLL], None],
         omp_threads: Callable[[ctypes.CDLL], int], fallback: str
         ) -> tuple[Optional[ctypes.CDLL], str]:
    """``(library, status)`` of a native kernel: ``make()`` builds and loads it, ``check(lib)``
    declares its functions and self-tests it (raising if its results differ from PyTorch's),
    ``omp_threads(lib)`` reports its OpenMP threads. On any failure: ``(None, "unavailable
    (...)")`` and one ``RuntimeWarning`` naming the ``fallback``; ``SPIKESCULPT_NATIVE=0`` or a
    non-POSIX system give ``None`` without a warning."""
    if disabled_by_env():
        return None, "disabled (SPIKESCULPT_NATIVE=0)"
    if os.name != "posix":
        return None, "unavailable (not a POSIX system)"
    try:
        lib = make()
        check(lib)
        n = omp_threads(lib)
        return lib, f"loaded ({'OpenMP, ' + str(n) + ' threads' if n else 'single-threaded'})"
    except Exception as e:  # anything: the caller falls back to PyTorch
        state = f"unavailable ({type(e).__name__}: {e})"
        warnings.warn(f"spikesculpt: native {what} kernel {state}; using {fallback} (same "
                      "results, slower). Set SPIKESCULPT_NATIVE=0 to silence.", RuntimeWarning,
                      stacklevel=4)
        return None, state


class NativeKernel:
    """One native kernel library of a module, built, self-tested and loaded on first use
    (``load``), once per process and thread-safe. ``make()`` builds and loads it,
    ``declare(lib)`` sets its functions' ctypes signatures, ``self_test()`` compares its results
    with PyTorch's (raising if they differ; it runs with ``lib`` already set, so it calls the
    kernels as their module does), ``omp_threads(lib)`` reports its OpenMP threads and
    ``fallback`` names what runs without it. ``lib`` is the loaded ``ctypes.CDLL`` (None until
    loaded, or if unavailable); ``status()`` says which, in one line."""

    def __init__(self, what: str, make: Callable[[], ctypes.CDLL],
                 declare: Callable[[ctypes.CDLL], None], self_test: Callable[[], None],
                 omp_threads: Callable[[ctypes.CDLL], int], fallback: str):
        self.what, self.make, self.declare, self.self_test = what, make, declare, self_test
        self.omp_threads, self.fallback = omp_threads, fallback
        self.lib: Optional[ctypes.CDLL] = None
        self.state = "not tried"
        self._lock = threading.Lock()

    def _check(self, lib: ctypes.CDLL) -> None:
        self.declare(lib)
        self.lib = lib
        self.self_test()

    def library(self) -> Optional[ctypes.CDLL]:
        """The loaded library (built on the first call), or None if unavailable."""
        if self.lib is None and self.state == "not tried":
            with self._lock:
                if self.lib is None and self.state == "not tried":
                    self.lib, self.state = load(self.what, self.make, self._check,
                                                self.omp_threads, self.fallback)
        return self.lib

    def available(self) -> bool:
        return self.library() is not None

    def status(self) -> str:
        """One line: whether the kernel is loaded, and why not if it is not."""
        self.library()
        return self.state

