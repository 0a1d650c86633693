"""The relay marks what went out as it goes, so that the sweep, which sends a message left
unmarked for 2 s, does not send again the start of a long batch still going out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import outbox
from app.extension import runtime
from app.models.outbox import OutboxMessage
from app.relay import MARK_EVERY, OutboxRelay


class Broker:
    """A stand-in for the Celery app's pool and publishing: counts what is sent and, at each
    send, how many of the messages the database holds as sent."""

    def __init__(self, app: Flask, fail_at: int | None = None) -> None:
        self.app, self.fail_at = app, fail_at
        self.marked_before: list[int] = []
        self.collected = False
        self.pool = self
        self.conf = SimpleNamespace(broker_url="redis://127.0.0.1:6379/0")

    @contextmanager
    def acquire(self, block: bool, timeout: float) -> Iterator[Broker]:
        yield self

    def ensure_connection(self, **_: Any) -> None:
        pass

    def collect(self) -> None:
        self.collected = True

    def send_task(self, name: str, **_: Any) -> None:
        if len(self.marked_before) == self.fail_at:
            raise ConnectionError("the broker went away")
        self.marked_before.append(marked(self.app))


def marked(app: Flask) -> int:
    with runtime(app).db.uow() as uow:
        query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_not(None))
        return int(uow.session.scalar(query) or 0)


def committed(app: Flask, count: int) -> list[OutboxMessage]:
    with runtime(app).db.uow() as uow:
        messages = [outbox.add(uow, "ops.ping", {"token": str(n)}, "members") for n in range(count)]
        uow.commit()
    return messages


def test_a_long_batch_is_marked_sent_as_it_goes(app: Flask) -> None:
    messages = committed(app, 2 * MARK_EVERY + 50)
    broker = Broker(app)
    assert OutboxRelay(runtime(app).db, broker).send(messages) == len(messages)  # type: ignore[arg-type]
    assert broker.marked_before[MARK_EVERY - 1] == 0
    assert broker.marked_before[MARK_EVERY] == MARK_EVERY
    assert broker.marked_before[2 * MARK_EVERY] == 2 * MARK_EVERY
    assert marked(app) == len(messages)
    assert not broker.collected


def test_what_went_out_before_the_broker_failed_is_marked_and_the_rest_left_to_the_sweep(app: Flask) -> None:
    messages = committed(app, 2 * MARK_EVERY)
    broker = Broker(app, fail_at=MARK_EVERY + 30)
    with pytest.raises(ConnectionError):
        OutboxRelay(runtime(app).db, broker).send(messages)  # type: ignore[arg-type]
    assert marked(app) == MARK_EVERY + 30
    assert broker.collected  # the pool connects afresh rather than send on a half-failed connection
    with runtime(app).db.uow() as uow:
        unsent = uow.session.scalars(select(OutboxMessage.id).where(OutboxMessage.sent_at.is_(None))).all()
    assert sorted(unsent) == [message.id for message in messages[MARK_EVERY + 30 :]]
