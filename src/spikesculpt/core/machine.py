"""What a result records about the machine it ran on: the CPU model and its core counts.

Read from ``/proc/cpuinfo`` on Linux (else what ``platform`` knows). Torch's thread count is not
read here (``core`` imports no torch); the caller adds it.
"""

from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; None where it cannot tell."""
    pairs, current = set(), {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("physical id", "core id"):
                    current[key] = value.strip()
                elif not line.strip():
                    if "core id" in current:
                        pairs.add((current.get("physical id"), current["core id"]))
                    current = {}
    except OSError:
        return None
    if "core id" in current:
        pairs.add((current.get("physical id"), current["core id"]))
    return len(pairs) or None


def machine_info() -> dict:
    """``{"cpu", "cores" (physical, or None), "logical_cpus", "platform"}``."""
    return {"cpu": cpu_name(), "cores": physical_cores(), "logical_cpus": os.cpu_count(),
            "platform": platform.platform()}
