"""When a flash winner's saga starts: its first step waits in the outbox, held, until its turn
by the gate's pace; the releaser (tasks/flash.py) sends those whose turn has come."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.timeutil import from_epoch_ms


def release_sagas(
    release_due: Callable[[datetime, int], int], *, sagas_per_second: int, tick_seconds: float, now_ms: int
) -> int:
    """Send the winners' first steps whose turn has come, earliest first; returns how many.

    A tick sends at most two ticks' worth of the pace: the turns that came since the last tick,
    and as many again to catch up after a lost or late one. Caught up, a saga starts within a
    tick of its turn, well below the stale limit after which the sweep would re-drive it.
    """
    return release_due(from_epoch_ms(now_ms), max(1, round(2 * sagas_per_second * tick_seconds)))
