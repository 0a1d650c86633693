"""A rush of buyers on the real stack (gunicorn, celery workers, beat, PostgreSQL, Redis): the
winners' sagas wait in the outbox until it has passed, then run to AWAITING_PAYMENT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from app.flash_gate import RUSH_KEY
from scripts.servers import Server
from tests.support.flash import buy, first_steps, sale
from tests.support.stack import Stack, running_stack

HOLD = 30  # seconds
RUSH_SECONDS = 8


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    with running_stack(
        pg_server.url,
        ORDERSAGA_FLASH_RUSH_HOLD_SECONDS=str(HOLD),
        ORDERSAGA_SAGA_STALE_SECONDS="60",
    ) as running:
        yield running


def test_the_winners_sagas_wait_out_a_rush_of_buyers_then_complete(stack: Stack) -> None:
    """Buyers rush the gate for the next few seconds (their count is set in Redis, as the gate
    keeps it: the counting itself is tested in-process), and five winners buy at its start."""
    flash = sale(stack, quantity=5)
    winners = [stack.user() for _ in range(5)]
    gate = redis.Redis.from_url(stack.redis.url)
    now = int(time.time())
    for second in range(now - 1, now + RUSH_SECONDS + 1):
        gate.set(RUSH_KEY.format(second), 1_000_000, ex=60)
    gate.close()
    # Rushed until the end of second now + RUSH_SECONDS, and that one still counts as "the last
    # second" for one more.
    rush_over = datetime.fromtimestamp(now + RUSH_SECONDS + 2, UTC)
    answers = [buy(stack, flash, winner) for winner in winners]
    bought = datetime.now(UTC)
    assert [a.status_code for a in answers] == [202] * 5
    assert bought < rush_over - timedelta(seconds=2), "the purchases took too long to show a hold"
    for answer in answers:
        assert stack.wait_order(answer.json()["order_id"])["status"] == "AWAITING_PAYMENT"
    steps = first_steps(stack, flash)
    assert len(steps) == 5
    for row in steps:
        # Each waited for the rush to pass, not for its hold to run out.
        assert rush_over <= row.started_at < row.not_before + timedelta(seconds=HOLD), (row, rush_over)
