"""CPU and memory figures of processes, read from /proc (Linux only, no psutil)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """user+sys CPU seconds of one process (all its threads), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (``VmRSS``, ``VmHWM``), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_map() -> dict[int, list[int]]:
    """ppid -> child pids, for the whole system."""
    out: dict[int, list[int]] = {}
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(b")") + 2 :].split()[1])
        out.setdefault(ppid, []).append(pid)
    return out


def labelled_tree(roots: dict[int, str]) -> dict[int, str]:
    """The roots and all their descendants; a descendant is labelled ``<root label>/child``."""
    kids = children_map()
    out: dict[int, str] = {}
    for root, label in roots.items():
        out[root] = label
        stack = list(kids.get(root, []))
        while stack:
            pid = stack.pop()
            if pid not in out:
                out[pid] = f"{label}/child"
                stack.extend(kids.get(pid, []))
    return out


def pids_by_comm_prefix(prefix: str) -> list[int]:
    return [pid for pid in all_pids() if comm(pid).startswith(prefix)]


@dataclass
class ProcFigures:
    """What one sampled process did during a sampling window."""

    label: str
    cpu_start: float
    cpu_last: float
    rss_peak_kib: int = 0
    hwm_kib: int = 0

    @property
    def cpu(self) -> float:
        return max(0.0, self.cpu_last - self.cpu_start)


@dataclass
class GroupFigures:
    name: str
    procs: dict[int, ProcFigures] = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        return sum(p.cpu for p in self.procs.values())

    @property
    def rss_peak_kib(self) -> int:
        """Largest single-process peak in the group."""
        return max((max(p.rss_peak_kib, p.hwm_kib) for p in self.procs.values()), default=0)

    def as_dict(self) -> dict[str, object]:
        return {
            "cpu_s": round(self.cpu, 3),
            "processes": {
                str(pid): {
                    "label": p.label,
                    "cpu_s": round(p.cpu, 3),
                    "rss_peak_mib": round(max(p.rss_peak_kib, p.hwm_kib) / 1024, 1),
                }
                for pid, p in self.procs.items()
            },
        }


PidSource = Callable[[], dict[int, str]]
"""Returns the pids of a group, each with a label (``serve``, ``worker-1``…)."""


class Sampler:
    """Samples CPU time and RSS of groups of processes every ``interval`` seconds in a thread.

    CPU of a group = sum over its processes of (last seen CPU - CPU when first seen in the window);
    a process that appears mid-window starts from 0, so a short-lived backend is counted too.
    """

    def __init__(self, groups: dict[str, PidSource], interval: float = 0.2) -> None:
        self._sources = groups
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.groups: dict[str, GroupFigures] = {name: GroupFigures(name) for name in groups}
        self._first = True

    def _sample(self) -> None:
        for name, source in self._sources.items():
            try:
                pids = source()
            except Exception:  # a pid source must never kill the sampler
                continue
            group = self.groups[name]
            for pid, label in pids.items():
                cpu = cpu_seconds(pid)
                if cpu is None:
                    continue
                rss = status_kib(pid, "VmRSS") or 0
                with self._lock:
                    proc = group.procs.get(pid)
                    if proc is None:
                        start = cpu if self._first else 0.0
                        proc = group.procs[pid] = ProcFigures(label, start, cpu)
                    proc.cpu_last = cpu
                    proc.rss_peak_kib = max(proc.rss_peak_kib, rss)
        self._first = False

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> Sampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, GroupFigures]:
        """Take a last sample (plus VmHWM) and stop; returns the figures per group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
        for group in self.groups.values():
            for pid, proc in group.procs.items():
                proc.hwm_kib = status_kib(pid, "VmHWM") or 0
        return self.groups


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rusage_self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def now() -> float:
    return time.time()
