"""core/allocator: glibc keeps freed memory after ``keep_freed_memory`` (in a subprocess: the
setting is process-wide and cannot be undone)."""

import platform
import subprocess
import sys

import pytest

# RSS (resident pages) after a 256 MB tensor is written and freed: kept by the process, or not
_CODE = """
import sys, torch
from spikesculpt.core import allocator
def rss_mb():
    with open('/proc/self/statm') as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20
if sys.argv[1] == 'keep':
    assert allocator.keep_freed_memory(), allocator.state()
before = rss_mb()
x = torch.ones(64, 2**20)  # 256 MB, written
del x
print(allocator.state(), round(rss_mb() - before))
"""


def _kept_mb(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _CODE, mode], capture_output=True, text=True,
                         check=True).stdout.strip()
    state, kept = out.rsplit(" ", 1)
    return state, int(kept)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_keep_freed_memory_keeps_a_freed_tensor_in_the_process():
    state, kept = _kept_mb("system")
    assert state == "system malloc" and kept < 64   # glibc unmapped the 256 MB block
    state, kept = _kept_mb("keep")
    assert state == "glibc malloc keeps freed memory" and kept > 192  # still resident: reused

