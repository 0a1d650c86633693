"""Payments on real processes: success racing cancellation, and points through the members queue.

The tests sign and send the provider's webhooks themselves, so that they decide when one arrives;
no worker serves the `sandbox` queue (the provider's own deliveries wait there, unsent).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from scripts.servers import Server
from tests.support.processes import wait_until
from tests.support.stack import Stack, at_provider, pay_at_provider, send_webhook

SHOP_QUEUES_BUT_MEMBERS = ["orders", "inventory", "coupons", "payments"]


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    stack = Stack(pg_server.url)
    try:
        stack.start_api()
        stack.start_worker(queues=SHOP_QUEUES_BUT_MEMBERS)
        stack.start_beat()
        yield stack
    finally:
        stack.close()


def _awaiting_orders(
    stack: Stack, goods: dict[str, Any], buyer: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=10) as pool:
        placed = list(pool.map(lambda _: stack.place(buyer, [(goods["id"], 1)]).json()["id"], range(count)))
    orders = [stack.wait_order(order_id, timeout=120) for order_id in placed]
    assert {o["status"] for o in orders} == {"AWAITING_PAYMENT"}
    return orders


def test_points_arrive_when_a_members_worker_starts(stack: Stack) -> None:
    goods, buyer = stack.goods(stock=3, price_cents=12_345), stack.user()
    [order] = _awaiting_orders(stack, goods, buyer, 1)
    pay_at_provider(stack, order)
    assert send_webhook(stack, order).status_code == 200
    confirmed = stack.wait_order(order["id"], ("CONFIRMED",))
    assert stack.saga(order["saga"]["id"])["status"] == "COMPLETED"
    assert stack.ok("GET", "/api/v1/me", buyer["token"])["points"] == 0  # no worker serves `members` yet

    stack.start_worker(name="members", queues=["members"])
    expected = confirmed["payable_cents"] // 100

    def credited() -> bool:
        return stack.ok("GET", "/api/v1/me", buyer["token"])["points"] == expected

    wait_until(credited, timeout=60, what="the points to be credited")
    stack.stop("members")


def test_fifty_successes_racing_cancellations_end_confirmed_or_refunded(stack: Stack) -> None:
    goods, buyer = stack.goods(stock=50), stack.user()
    orders = _awaiting_orders(stack, goods, buyer, 50)
    for order in orders:
        pay_at_provider(stack, order)  # every payment succeeded at the provider

    def webhook(order: dict[str, Any]) -> int:
        return int(send_webhook(stack, order).status_code)

    def cancel(order: dict[str, Any]) -> int:
        return stack.call("POST", f"/api/v1/orders/{order['id']}/cancel", buyer["token"]).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        races = [(pool.submit(webhook, o), pool.submit(cancel, o)) for o in orders]
        answers = [(w.result(), c.result()) for w, c in races]
    assert {w for w, _ in answers} == {200}
    assert {c for _, c in answers} <= {202, 409}

    final = [stack.wait_order(o["id"], ("CONFIRMED", "REFUNDED"), timeout=120) for o in orders]
    for order, (_, cancel_status) in zip(final, answers, strict=True):
        provider = at_provider(stack, order)
        if order["status"] == "CONFIRMED":
            assert (cancel_status, provider, order["payment"]["status"]) == (409, "succeeded", "SUCCEEDED")
        else:
            assert (cancel_status, provider, order["payment"]["status"]) == (202, "refunded", "REFUNDED")
            assert order["cancel_reason"] == "user_cancelled"
    confirmed = sum(o["status"] == "CONFIRMED" for o in final)
    now = stack.stock(goods["id"])
    assert (now["stock_sold"], now["stock_reserved"], now["stock_available"]) == (
        confirmed,
        0,
        50 - confirmed,
    )
