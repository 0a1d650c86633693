"""When a flash winner's saga starts: its first step waits in the outbox, held, until its turn
by the gate's pace; the releaser (tasks/flash.py) sends those whose turn has come."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from app.flash_gate import (
    FlashGate,
)
from app.timeutil import from_epoch_ms


def release_sagas(
    gate: FlashGate,
    release_due: Callable[[datetime, int], int],
    *,
    sagas_per_second: int,
    hold_seconds: int,
    tick_seconds: float,
    now_ms: int,
) -> int:
    """Send the winners' first steps whose turn has come, earliest first; returns how many.

    While buyers rush the gate (app/flash_gate.py), the sagas wait, up to `hold_seconds` past
    their turn: the cores then go to answering buyers, and the sagas run once the rush has
    passed. A tick sends at most two ticks' worth of the pace: the turns that came since the last
    tick, and as many again to catch up after a rush or a lost tick. Caught up, a saga starts
    within a tick of its turn, and a held one within `hold_seconds` and a tick or so, below the
    stale limit after which the sweep would re-drive it.
    """
    due_by = from_epoch_ms(now_ms)
    if hold_seconds > 0 and gate.rushing(now_ms):
        due_by -= timedelta(seconds=hold_seconds)
    return release_due(due_by, max(1, round(2 * sagas_per_second * tick_seconds)))
