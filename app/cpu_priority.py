"""The saga workers yield the CPU to the API when both share one machine.

A buyer waits on the API's answer; nobody waits on a saga step in the same way (the order is
already recorded, and its payment timeout starts only once it awaits payment). During a flash
sale the API must answer tens of thousands of attempts while hundreds of new sagas queue up: at
equal priority the workers take a large share of the shared cores, and the sale serves fewer
attempts per second. At a lower priority they take what the API leaves, and catch up once the
burst is over (figures in docs/benchmarks.md).

Linux's autogroup scheduling shares the CPU between sessions first, so a nice value alone does
nothing against an API that runs in another session (as every service does under systemd). A
worker that leads its own session lowers its session's autogroup too; one that shares its
session with others leaves the autogroup alone, so that it never lowers the priority of
processes that are not its own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

AUTOGROUP = Path("/proc/self/autogroup")


def yield_cpu(nice: int) -> None:
    """Lower this process's CPU priority to `nice` (0 leaves it alone). Children inherit it."""
    if nice <= 0:
        return
    try:
        os.nice(max(0, nice - os.nice(0)))
    except OSError:
        log.warning("could not lower the worker's CPU priority to nice %s", nice, exc_info=True)
        return
    if os.getsid(0) == os.getpid() and AUTOGROUP.exists():
        try:
            AUTOGROUP.write_text(str(nice))
        except OSError:  # kernels that refuse it: the nice value still orders it within its session
            log.info("could not lower this session's autogroup priority", exc_info=True)
