"""What the benchmark ran on: cores, memory, CPU model, versions."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from bench.procstat import machine_busy_seconds


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_head(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def describe() -> dict[str, object]:
    root = Path(__file__).resolve().parent.parent
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hookd": _version("hookd"),
        "aiohttp": _version("aiohttp"),
        "uvloop": _version("uvloop"),
        "git_head": _git_head(root),
    }


def wait_quiet(limit_s: float, cores: float = 0.25, window_s: float = 5.0) -> float:
    """Waits until the machine's load over ``window_s`` is below ``cores`` (or ``limit_s`` passed).

    Returns the load of the last window, in cores.
    """
    deadline = time.monotonic() + limit_s
    while True:
        busy0 = machine_busy_seconds()
        time.sleep(window_s)
        load = (machine_busy_seconds() - busy0) / window_s
        if load < cores or time.monotonic() >= deadline:
            return round(load, 2)
