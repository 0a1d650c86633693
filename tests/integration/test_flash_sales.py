"""Flash sales on the real stack: gunicorn, celery workers, beat, PostgreSQL and Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
import redis

from app.broker import redis_queue_keys
from app.config import load_settings
from app.flash_gate import PACE_KEY
from scripts.servers import Server
from tests.support.flash import buy, first_steps, sale
from tests.support.processes import wait_until
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    with running_stack(pg_server.url) as running:
        yield running


def _conserved(stack: Stack, flash: dict[str, Any], total: int) -> dict[str, Any]:
    goods = stack.stock(flash["goods"]["id"])
    held = stack.sql("SELECT units_held FROM flash_sales WHERE id = :id", id=flash["id"])[0].units_held
    assert goods["stock_available"] + goods["stock_reserved"] + goods["stock_sold"] + held == total
    return goods


def test_sixty_buyers_two_attempts_each_buy_exactly_twenty(stack: Stack) -> None:
    flash = sale(stack, quantity=20)
    buyers = [stack.user() for _ in range(60)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda b: buy(stack, flash, b), buyers + buyers))
    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) == 20
    assert {a.json()["code"] for a in answers if a.status_code != 202} <= {"sold-out", "limit-exceeded"}
    orders = [stack.wait_order(a.json()["order_id"]) for a in accepted]
    assert {o["status"] for o in orders} == {"AWAITING_PAYMENT"}
    assert len({o["user_id"] for o in orders}) == 20  # one each: the limit held
    assert stack.ok("GET", f"/api/v1/flash-sales/{flash['id']}")["remaining"] == 0
    assert stack.sql("SELECT count(*) AS n FROM orders WHERE flash_sale_id = :id", id=flash["id"])[0].n == 20
    goods = _conserved(stack, flash, 20)
    assert goods["stock_reserved"] == 20


def test_a_sale_not_started_or_over_is_not_active(stack: Stack) -> None:
    buyer = stack.user()
    assert buy(stack, sale(stack, 3, starts_in=600), buyer).json()["code"] == "not-active"
    assert buy(stack, sale(stack, 3, starts_in=-600, lasts=300), stack.user()).json()["code"] == "not-active"


def test_a_cancelled_flash_order_frees_its_unit_for_someone_else(stack: Stack) -> None:
    flash = sale(stack, quantity=1)
    first, second = stack.user(), stack.user()
    order_id = buy(stack, flash, first).json()["order_id"]
    assert buy(stack, flash, second).json()["code"] == "sold-out"
    stack.wait_order(order_id)
    assert stack.call("POST", f"/api/v1/orders/{order_id}/cancel", first["token"]).status_code == 202
    assert stack.wait_order(order_id, ("CANCELLED",))["cancel_reason"] == "user_cancelled"
    assert stack.ok("GET", f"/api/v1/flash-sales/{flash['id']}")["remaining"] == 1

    def bought() -> Any:
        answer = buy(stack, flash, second)
        return answer if answer.status_code == 202 else None

    again = wait_until(bought, timeout=30, interval=0.3, what="the unit to be back at the gate")
    assert stack.wait_order(again.json()["order_id"])["status"] == "AWAITING_PAYMENT"
    _conserved(stack, flash, 1)


def test_a_redis_restart_mid_sale_never_oversells(stack: Stack) -> None:
    flash = sale(stack, quantity=30)
    early = [stack.user() for _ in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        first = list(pool.map(lambda b: buy(stack, flash, b), early))
    assert sum(a.status_code == 202 for a in first) == 20

    stack.redis.restart()  # no persistence: the gate, the cached tokens and the broker's queues are gone
    late = [stack.user() for _ in range(40)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        second = list(pool.map(lambda b: buy(stack, flash, b), early + late))
    assert all(a.status_code in (202, 409, 503) for a in second), {a.status_code for a in second}
    sold = stack.sql("SELECT count(*) AS n FROM orders WHERE flash_sale_id = :id", id=flash["id"])[0].n
    assert sold <= 30
    # The gate was rebuilt from SQL: the early buyers are still at their limit.
    assert not any(a.status_code == 202 for a in second[: len(early)])
    for order_id in stack.sql("SELECT id FROM orders WHERE flash_sale_id = :id", id=flash["id"]):
        stack.wait_order(order_id.id, timeout=90)
    _conserved(stack, flash, 30)


def test_the_end_of_a_sale_returns_its_unsold_units(stack: Stack) -> None:
    flash = sale(stack, quantity=10, stock=15, starts_in=-1, lasts=4)
    for buyer in [stack.user() for _ in range(3)]:
        assert buy(stack, flash, buyer).status_code == 202
    assert stack.stock(flash["goods"]["id"])["stock_available"] == 5

    def returned() -> bool:
        return stack.stock(flash["goods"]["id"])["stock_available"] == 12

    wait_until(returned, timeout=30, what="the unsold units to return to the goods")
    goods = _conserved(stack, flash, 15)
    assert goods["stock_reserved"] == 3


def test_a_sale_backlog_does_not_starve_ordinary_orders(stack: Stack) -> None:
    stack.stop("worker")  # a backlog builds up in the broker while no step runs:
    stack.start_worker("releaser", queues=["orders"])  # beat's ticks still release the sale's first steps
    try:
        flash = sale(stack, quantity=40)
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(lambda b: buy(stack, flash, b), [stack.user() for _ in range(40)]))
        assert sum(a.status_code == 202 for a in answers) == 40
        wait_until(
            lambda: stack.sql("SELECT count(*) AS n FROM outbox_messages WHERE sent_at IS NULL")[0].n == 0,
            timeout=30,
            what="the sale's first steps to be released and sent to the broker",
        )
        broker = redis.Redis.from_url(stack.redis.url)
        backlog = sum(int(broker.llen(key)) for key in redis_queue_keys("inventory"))
        broker.close()
        # Every first step waits in the broker, ahead of the ordinary order. (The sweep runs on the
        # releaser too, and may re-drive some as stale: duplicates, which the saga absorbs.)
        assert backlog >= 40
        ordinary = stack.place(stack.user(), [(stack.goods(stock=1)["id"], 1)]).json()
    finally:
        stack.stop("releaser")
        stack.start_worker()

    order = stack.wait_order(ordinary["id"], timeout=90)
    assert order["status"] == "AWAITING_PAYMENT"
    ahead = stack.sql(
        """SELECT count(*) AS n FROM saga_steps flash_step
           JOIN sagas s ON s.id = flash_step.saga_id
           JOIN orders o ON o.id = s.subject_id
           WHERE o.flash_sale_id = :sale AND flash_step.name = 'reserve_stock'
             AND flash_step.finished_at < (SELECT started_at FROM saga_steps
                                           WHERE saga_id = :saga AND name = 'reserve_stock')""",
        sale=flash["id"],
        saga=order["saga"]["id"],
    )[0].n
    # Only the few messages a worker had already prefetched may go first, not the whole backlog.
    assert ahead <= 4, f"{ahead} of 40 flash orders reserved before the ordinary order"
    for answer in answers:
        stack.wait_order(answer.json()["order_id"], timeout=120)


def test_a_burst_of_winners_runs_its_sagas_at_the_pace_and_each_completes(stack: Stack) -> None:
    """At the service's default pace, each winner's first step waits in the outbox for its own
    start time, and none starts before it on a real worker."""
    interval = 1 / load_settings(stack.env).flash_sagas_per_second
    flash = sale(stack, quantity=12)
    buyers = [stack.user() for _ in range(12)]
    # Earlier winners hold the pace for the next 3 seconds, however slowly these purchases arrive.
    gate = redis.Redis.from_url(stack.redis.url)
    gate.set(PACE_KEY, int(time.time() * 1000) + 3000, px=10_000)
    gate.close()
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda b: buy(stack, flash, b), buyers))
    assert [a.status_code for a in answers] == [202] * 12
    for answer in answers:
        assert stack.wait_order(answer.json()["order_id"])["status"] == "AWAITING_PAYMENT"
    paced = first_steps(stack, flash)
    assert all(row.not_before is not None for row in paced)
    gaps = [(b.not_before - a.not_before).total_seconds() for a, b in pairwise(paced)]
    assert all(interval - 0.001 <= gap <= interval + 0.001 for gap in gaps), gaps
    early = [row for row in paced if row.started_at < row.not_before - timedelta(milliseconds=10)]
    assert early == [], "a paced step ran before its start time"
