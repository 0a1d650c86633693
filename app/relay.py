"""The outbox relay: sends committed outbox messages to the broker.

It runs right after each commit (for speed) and from the sweep (for messages the broker could
not take at the time); held messages (a flash winner's first saga step) wait for `release_due`.
No database transaction is open while it talks to the broker; a message sent twice (a crash
between sending and marking) is harmless because every task is idempotent. A saga's messages
come committed as sent (app/outbox.py): the relay marks unsent those the broker refused.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, select, update

from app import broker, tracing
from app.db import Database
from app.models.outbox import OutboxMessage
from app.timeutil import as_utc, utcnow

if TYPE_CHECKING:  # the relay is handed its Celery app; importing Celery here would load it
    from celery import Celery

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "ordersaga_request_id"
MARK_EVERY = 200  # messages sent between two marks of what went out
CONFIRM_TIMEOUT_SECONDS = 5  # RabbitMQ: a publish not confirmed by then counts as not sent


class OutboxRelay:
    def __init__(self, db: Database, celery_app: Celery) -> None:
        self.db = db
        self.celery_app = celery_app
        self.on_redis = broker.is_redis(str(celery_app.conf.broker_url))

    def send_overdue(self, older_than: timedelta = timedelta(seconds=2), limit: int = 500) -> int:
        """Send what the after-commit relay could not (broker down, process killed)."""
        cutoff = utcnow() - older_than
        with self.db.uow() as uow:
            messages = list(
                uow.session.scalars(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.sent_at.is_(None),
                        OutboxMessage.held.is_(False),
                        OutboxMessage.created_at < cutoff,
                    )
                    .order_by(OutboxMessage.id)
                    .limit(limit)
                )
            )
        return self.send(messages)

    def holds_any(self) -> bool:
        """Whether any held message waits for `release_due`. Beat asks this before each tick
        of the releaser (tasks/flash.py), so it is one read on the index of held messages."""
        outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
        waiting = select(outbox.c.id).where(outbox.c.held.is_(True), outbox.c.sent_at.is_(None)).limit(1)
        with self.db.reads.connect() as connection:  # no transaction to end: beat asks every second
            return connection.execute(waiting).first() is not None

    def release_due(self, due_by: datetime, limit: int) -> int:
        """Send up to `limit` held messages due by `due_by`, the earliest first.

        They are claimed (no longer held) in one committed UPDATE, then sent as after a commit.
        SKIP LOCKED lets two releasers run at once without sending a message twice, and the
        claim restarts the 2 s the sweep leaves a new message to its sender. If the broker
        refuses them, those not sent are held again, to go out at the pace once it is back; a
        releaser that dies between its claim and its send leaves them to the sweep, as a commit
        whose relay failed would."""
        outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
        due = (
            select(outbox.c.id)
            .where(outbox.c.held.is_(True), outbox.c.sent_at.is_(None), outbox.c.eta <= due_by)
            .order_by(outbox.c.eta, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(outbox)
            .where(outbox.c.id.in_(due))
            .values(held=False, created_at=utcnow())
            .returning(*outbox.c)
        )
        with self.db.uow() as uow:
            rows = uow.connection.execute(claim).mappings().all()
            uow.commit()
        rows = sorted(rows, key=lambda row: (row["eta"], row["id"]))  # RETURNING keeps no order
        published: list[int] = []
        try:
            # Due now: sent without an ETA, so the worker runs it rather than timing it.
            return self.send([OutboxMessage(**{**row, "eta": None}) for row in rows], published)
        except Exception:
            unsent = {row["id"] for row in rows} - set(published)
            if unsent:
                with self.db.uow() as uow:
                    # Not one the sweep has sent meanwhile: a held message is always an unsent one.
                    again = outbox.c.id.in_(unsent) & outbox.c.sent_at.is_(None)
                    uow.connection.execute(update(outbox).where(again).values(held=True))
                    uow.commit()
            raise

    def send(self, messages: list[OutboxMessage], published: list[int] | None = None) -> int:
        """Send these messages; returns how many went out, and adds their ids to `published`
        as they go (so a caller knows which went out even when this raises).

        After a commit they come from the committing unit of work itself (loaded, never
        expired), so they are not read back. What went out is marked every `MARK_EVERY`
        messages, not only at the end: the sweep sends a message left unmarked for 2 s, and the
        sweep's own thousands of timeouts take longer than that to send. A message the sweep
        sent meanwhile would go twice, which every task absorbs.
        """
        if not messages:
            return 0
        sent: list[int] = [] if published is None else published
        marked = 0  # messages[:marked] are recorded
        try:
            # Fail fast when the broker is down: one connection attempt, no retries. The messages
            # are safe in the database; the sweep sends them later. (kombu's default retries would
            # hold an HTTP request for seconds.)
            with self.celery_app.pool.acquire(block=True, timeout=5) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
                if not self.on_redis:
                    broker.declare_delayed_delivery(connection, list(self.celery_app.amqp.queues.values()))
                try:
                    for done, message in enumerate(messages, start=1):
                        with tracing.resumed(message.trace_context):
                            self.celery_app.send_task(
                                message.task,
                                kwargs=message.kwargs,
                                queue=message.queue,
                                headers={REQUEST_ID_HEADER: message.request_id}
                                if message.request_id
                                else None,
                                retry=False,
                                connection=connection,
                                **self._delivery(message),
                            )
                        sent.append(message.id)
                        if done - marked == MARK_EVERY:
                            self._record(messages[marked:done], set(sent))
                            marked = done
                except Exception:
                    # A send that failed half-way (a confirm that never came, a reset socket)
                    # leaves the connection in a state not to send on again: the pool reconnects.
                    connection.collect()
                    raise
        finally:
            self._record(messages[marked:], set(sent))
        return len(sent)

    def _delivery(self, message: OutboxMessage) -> dict[str, Any]:
        """When and in which order the broker delivers it.

        Redis: the ETA as is (the worker holds the message until then), and the priority.
        RabbitMQ: a whole number of seconds of delay, rounded up, since the broker's delay is
        counted in whole seconds and Celery truncates, which would deliver a timeout before its
        deadline (or fail, below one second); no priority (quorum queues have none).
        """
        if self.on_redis:
            return {"eta": message.eta, "priority": message.priority}
        if message.eta is None:
            return {"confirm_timeout": CONFIRM_TIMEOUT_SECONDS}
        wait = (as_utc(message.eta) - utcnow()).total_seconds()
        countdown = math.ceil(wait) if wait > 0 else None
        return {"countdown": countdown, "confirm_timeout": CONFIRM_TIMEOUT_SECONDS}

    def _record(self, messages: list[OutboxMessage], sent: set[int]) -> None:
        """Mark sent what went out, and unsent what was committed as sent but did not go out
        (`outbox.add_presumed_sent`), so that the sweep sends it."""
        presumed = {message.id for message in messages if message.sent_at is not None}
        if sent - presumed:
            self._mark(sorted(sent - presumed), utcnow())
        if presumed - sent:
            self._mark(sorted(presumed - sent), None)

    def _mark(self, ids: list[int], sent_at: datetime | None) -> None:
        """Without a session: no identity map is needed to stamp a few rows. If a "sent" mark
        is lost in a crash, the sweep sends the message again, which every task absorbs."""
        outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
        marking = update(outbox).where(outbox.c.id.in_(ids)).values(sent_at=sent_at)
        if sent_at is not None:  # not one the sweep has marked meanwhile
            marking = marking.where(outbox.c.sent_at.is_(None))
        with self.db.bookkeeping.begin() as connection:
            connection.execute(marking)

    def purge_sent(self, older_than: timedelta, batch: int = 5_000, batches: int = 20) -> int:
        """Delete messages sent more than `older_than` ago; returns how many.

        A sent message is kept only as a record for that long: every order and every saga step
        adds one, so without this the table would grow without bound. In batches of `batch`
        rows, each its own short transaction, at most `batches` of them per call (the sweep calls
        again); never an unsent or a held message.
        """
        outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
        cutoff = utcnow() - older_than
        oldest = select(outbox.c.id).where(outbox.c.sent_at < cutoff).order_by(outbox.c.sent_at).limit(batch)
        purged = 0
        for _ in range(batches):
            with self.db.engine.begin() as connection:
                deleted = connection.execute(delete(outbox).where(outbox.c.id.in_(oldest))).rowcount
            purged += deleted
            if deleted < batch:
                break
        return purged
