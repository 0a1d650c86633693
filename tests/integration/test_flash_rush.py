"""A rush of buyers on the real stack (gunicorn, celery workers, beat, PostgreSQL, Redis): the
winners' sagas wait in the outbox until it has passed, then run to AWAITING_PAYMENT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import redis
import requests

from app.flash_gate import RUSH_KEY
from scripts.servers import Server
from tests.support.api import bearer
from tests.support.flash import buy, sale
from tests.support.processes import wait_until
from tests.support.stack import Stack, running_stack

RUSH = 20  # attempts a second
HOLD = 30  # seconds


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    with running_stack(
        pg_server.url,
        ORDERSAGA_FLASH_RUSH_ATTEMPTS_PER_SECOND=str(RUSH),
        ORDERSAGA_FLASH_RUSH_HOLD_SECONDS=str(HOLD),
        ORDERSAGA_SAGA_STALE_SECONDS="60",
    ) as running:
        yield running


def rush(url: str, token: str, seconds: float) -> tuple[int, datetime]:
    """Purchase attempts one after another for `seconds`: how many, and when the last was sent."""
    attempts, last = 0, datetime.now(UTC)
    with requests.Session() as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            last = datetime.now(UTC)
            http.post(url, json={"quantity": 2}, headers=bearer(token), timeout=10)  # over the limit
            attempts += 1
    return attempts, last


def test_the_winners_sagas_wait_out_a_rush_of_buyers_then_complete(stack: Stack) -> None:
    flash = sale(stack, quantity=5)
    winners = [stack.user() for _ in range(5)]
    url = stack.url(f"/api/v1/flash-sales/{flash['id']}/purchase")
    gate = redis.Redis.from_url(stack.redis.url)
    with ThreadPoolExecutor(max_workers=1) as pool:
        rushing = pool.submit(rush, url, stack.user()["token"], 5.0)
        wait_until(  # a whole second of the rush is behind us before anyone wins
            lambda: int(gate.get(RUSH_KEY.format(int(time.time()) - 1)) or 0) >= RUSH,
            timeout=10,
            what="a rush of buyers",
        )
        answers = [buy(stack, flash, winner) for winner in winners]
        attempts, rush_over = rushing.result()
    gate.close()
    assert [a.status_code for a in answers] == [202] * 5
    for answer in answers:
        assert stack.wait_order(answer.json()["order_id"])["status"] == "AWAITING_PAYMENT"
    steps = stack.sql(
        """SELECT s.not_before, step.started_at FROM sagas s
           JOIN orders o ON o.id = s.order_id
           JOIN saga_steps step ON step.saga_id = s.id AND step.name = 'reserve_stock'
                                AND step.kind = 'action'
           WHERE o.flash_sale_id = :sale""",
        sale=flash["id"],
    )
    assert len(steps) == 5
    for row in steps:
        # Each waited for the rush to pass (bought about 4 s before its end), not for its hold.
        assert row.started_at > rush_over - timedelta(milliseconds=500), (row, rush_over, attempts)
        assert row.started_at < row.not_before + timedelta(seconds=HOLD)
