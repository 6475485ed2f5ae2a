"""Run a snippet in a fresh Python with the native kernels switched off (``SPIKESCULPT_NATIVE=0``):
the fallback tests of the sparse-inference layers use it."""

import os
import subprocess
import sys


def run_native_off(code: str) -> str:
    """Run ``code`` with ``SPIKESCULPT_NATIVE=0``; assert it succeeds; return its stdout."""
    env = dict(os.environ, SPIKESCULPT_NATIVE="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout
