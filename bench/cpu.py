"""Where the two cores went during a phase of a bench: CPU seconds per kind of process.

The server, its workers, PostgreSQL, Redis and the load generator share two cores, so a phase's
throughput is decided by who else took the CPU. Read from /proc (Linux only, as the bench is).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")

KINDS: list[tuple[str, Callable[[str], bool]]] = [
    ("api", lambda cmd: "gunicorn" in cmd),
    ("saga workers", lambda cmd: "celery" in cmd and " worker" in cmd),
    ("beat", lambda cmd: "celery" in cmd and " beat" in cmd),
    ("postgres", lambda cmd: cmd.startswith("postgres")),
    ("redis", lambda cmd: "redis-server" in cmd.split(" ", 1)[0]),
    ("bench", lambda cmd: "bench." in cmd),
]


def by_kind() -> dict[str, float]:
    """CPU seconds used so far by each kind of process (those that ended included)."""
    seconds: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        kind = next((name for name, matches in KINDS if matches(cmd)), "other")
        # utime, stime, cutime, cstime: children that ended (celery's forked pool) count too
        used = sum(int(x) for x in fields[11:15]) / TICKS
        seconds[kind] = seconds.get(kind, 0.0) + used
    return seconds


def _idle() -> float:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return (int(fields[3]) + int(fields[4])) / TICKS  # idle + iowait, over all cores


@dataclass
class CpuUse:
    """CPU seconds per kind of process over a phase, and the seconds the cores sat idle."""

    seconds: dict[str, float] = field(default_factory=dict)
    idle: float = 0.0

    def shares(self, wall: float) -> str:
        cores = os.cpu_count() or 1
        ranked = sorted(self.seconds.items(), key=lambda item: -item[1])
        parts = [f"{kind} {used / wall:.2f}" for kind, used in ranked]
        return ", ".join([*parts, f"idle {self.idle / wall:.2f} (of {cores} cores)"])


@contextmanager
def cpu_use() -> Iterator[CpuUse]:
    """Measure the enclosed phase. Processes that start and end inside it are not counted."""
    before, idle_before = by_kind(), _idle()
    use = CpuUse()
    yield use
    after, idle_after = by_kind(), _idle()
    use.seconds = {k: after[k] - before.get(k, 0.0) for k in after if after[k] - before.get(k, 0.0) > 0.005}
    use.idle = idle_after - idle_before
