"""How long the sweep waits before it sends something again that may only be slow.

The sweep cannot tell a message the broker lost from one still waiting in a long queue. If it
sent again every stale period, a backlog longer than that period would be handed a duplicate of
every waiting message each period, and the duplicates would lengthen the backlog further: the
workers would fall behind for good. So each resend of the same thing doubles the wait before the
next one (the stale period, then twice it, four times, up to 2**MAX_DOUBLINGS times), and a
backlog gets at most a few duplicates of each message however long it lasts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

MAX_DOUBLINGS = 4


def longest_wait(wait: timedelta) -> timedelta:
    """The wait between resends once they have backed off all the way."""
    return wait * (1 << MAX_DOUBLINGS)


def due_again(
    resends: InstrumentedAttribute[int],
    last: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    now: datetime,
    wait: timedelta,
) -> ColumnElement[bool]:
    """True for rows whose `last` send is older than `wait` doubled once per resend so far.

    Written as one comparison per count rather than with interval arithmetic, so that the same
    SQL runs on PostgreSQL and SQLite."""
    bands = [and_(resends == n, last <= now - wait * 2**n) for n in range(MAX_DOUBLINGS)]
    bands.append(and_(resends >= MAX_DOUBLINGS, last <= now - longest_wait(wait)))
    return or_(*bands)
