"""What is waiting that should not wait long: the figures behind the backlog alerts.

Read from the database at scrape time, as the order and saga counts are, so that they stay right
whatever process made the change or died.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.db import UnitOfWork
from app.models.outbox import OutboxMessage
from app.timeutil import as_utc
from sagas.models import COMPENSATING, RUNNING, Saga


@dataclass(frozen=True)
class Backlog:
    outbox_unsent: int  # committed, due, and not yet handed to the broker
    outbox_oldest_seconds: float  # how long the oldest of those has waited; 0 when none
    sagas_stalled: int  # running or compensating, and not moved for the stale limit


def read(uow: UnitOfWork, now: datetime, stale: timedelta) -> Backlog:
    """A held message (a flash-sale winner paced, a far ETA) waits on purpose and is not counted."""
    unsent, oldest = uow.session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(
            OutboxMessage.sent_at.is_(None), OutboxMessage.held.is_(False)
        )
    ).one()
    stalled = uow.session.scalar(
        select(func.count())
        .select_from(Saga)
        .where(Saga.status.in_((RUNNING, COMPENSATING)), Saga.updated_at < now - stale)
    )
    age = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
    return Backlog(int(unsent), max(0.0, age), int(stalled or 0))
