"""The sweep purges outbox messages sent longer ago than the retention, and nothing else, so the
table stays as small as the retention makes it however many orders go through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app import outbox
from app.extension import runtime
from app.models.outbox import OutboxMessage
from app.timeutil import utcnow
from app.web import create_app
from tasks.sweeps import sweep_once
from tests.support.databases import truncate_all
from tests.support.env import settings_for

QUEUE = "outbox-purge-test"  # a queue no worker serves: what the relay sends here is dropped after


@pytest.fixture
def purging_app(pg_url: str, redis_url: str) -> Iterator[Flask]:
    flask_app = create_app(settings_for(pg_url, redis_url, ORDERSAGA_OUTBOX_RETENTION_SECONDS="3600"))
    yield flask_app
    runtime(flask_app).db.dispose()
    runtime(flask_app).redis.delete(QUEUE)
    truncate_all(pg_url)


def _add(flask_app: Flask, count: int, held: bool = False) -> list[int]:
    """`count` messages, sent by the relay after their commit unless held."""
    with runtime(flask_app).db.uow() as uow:
        add = partial(outbox.hold, due=utcnow()) if held else outbox.add
        ids = [add(uow, "ops.ping", {"token": str(n)}, QUEUE).id for n in range(count)]
        uow.commit()
    return ids


def _sent_ago(flask_app: Flask, ids: list[int], ago: timedelta) -> None:
    with runtime(flask_app).db.uow() as uow:
        uow.session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(sent_at=utcnow() - ago)
        )
        uow.commit()


def _ids(flask_app: Flask) -> set[int]:
    with runtime(flask_app).db.uow() as uow:
        return set(uow.session.scalars(select(OutboxMessage.id)))


def test_the_sweep_purges_only_what_was_sent_before_the_retention(purging_app: Flask) -> None:
    old, recent = _add(purging_app, 3), _add(purging_app, 2)
    _sent_ago(purging_app, old, timedelta(hours=2))
    held = _add(purging_app, 2, held=True)
    unsent = _add(purging_app, 1)
    with runtime(purging_app).db.uow() as uow:  # as if the broker had been down at its commit
        uow.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(unsent)).values(sent_at=None))
        uow.commit()

    counts = sweep_once(runtime(purging_app))

    assert counts["purged"] == 3
    assert _ids(purging_app) == {*recent, *held, *unsent}


def test_the_outbox_stays_flat_over_a_long_run_of_messages(purging_app: Flask) -> None:
    relay = runtime(purging_app).relay
    assert relay is not None
    sizes = []
    for _wave in range(8):
        _sent_ago(purging_app, _add(purging_app, 250), timedelta(hours=2))  # sent, and now old
        relay.purge_sent(timedelta(hours=1), batch=100)  # the sweep, with smaller batches
        with runtime(purging_app).db.uow() as uow:
            sizes.append(uow.session.scalar(select(func.count()).select_from(OutboxMessage)))
    assert sizes == [0] * 8  # 2,000 messages went through; none is kept past the retention


def test_a_purge_stops_after_its_batches_and_the_next_sweep_goes_on(purging_app: Flask) -> None:
    relay = runtime(purging_app).relay
    assert relay is not None
    _sent_ago(purging_app, _add(purging_app, 30), timedelta(hours=2))
    assert relay.purge_sent(timedelta(hours=1), batch=10, batches=2) == 20
    assert relay.purge_sent(timedelta(hours=1), batch=10, batches=2) == 10
    assert _ids(purging_app) == set()
