"""Let glibc's malloc keep freed memory for reuse, so fresh tensors do not fault in page by page.

By default glibc hands large blocks straight back to the operating system: blocks above its
``mmap`` threshold (128 KB, raised up to 32 MB as blocks are freed) are unmapped on ``free``,
and free memory at the top of the heap is trimmed. An SNN's inference or training step
allocates the same large activation tensors (``[T·B, C, H, W]`` floats) again and again, so each
one is faulted in anew — a page fault per 4 KB page, ~1.9 GB/s on the CI VM (a ``fill_`` of a
new 128 MB tensor, against 12 GB/s in place). Measured there (2 threads, digits-dvs conv 64-128
at T = 4, ``evaluate --sparse``): the dense model's time per batch fell from 1,530 to 700 ms at
batch 256 and the sparse model's from ~920 to ~350 ms; at batch 16 from 62 to 39 ms and from 50
to 19 ms.

PyTorch's CPU performance guide recommends a caching allocator for this (jemalloc or tcmalloc
via ``LD_PRELOAD``). ``keep_freed_memory`` gets the same effect from glibc itself with
``mallopt``: ``M_MMAP_MAX = 0`` (every block comes from the heap) and ``M_TRIM_THRESHOLD`` at
its maximum (freed memory stays with the process). The price: the process keeps its peak
memory until it exits. It applies to the whole process, cannot be undone (glibc's dynamic
threshold is not restored), and changes nothing but speed. Elsewhere than glibc (macOS,
Windows, musl) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_lock = threading.Lock()
_state = "system malloc"


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None  # not glibc
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module). Idempotent; returns whether
    it is in effect (False where the C library is not glibc or refused the settings)."""
    global _state
    with _lock:
        if _state.startswith("glibc"):
            return True
        libc = _glibc()
        if libc is None:
            _state = "system malloc (not glibc: unchanged)"
            return False
        if libc.mallopt(M_MMAP_MAX, 0) != 1 or libc.mallopt(M_TRIM_THRESHOLD, _INT_MAX) != 1:
            _state = "system malloc (mallopt refused)"
            return False
        _state = "glibc malloc keeps freed memory"
        return True


def state() -> str:
    """One line: ``system malloc`` or ``glibc malloc keeps freed memory``."""
    return _state
