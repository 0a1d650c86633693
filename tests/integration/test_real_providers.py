"""Alipay, WeChat Pay and Stripe on the real stack (gunicorn, a worker, beat, PostgreSQL, Redis),
each against its stand-in, all enabled at once beside the sandbox.

Every test runs its story for each provider side by side: the orders are placed together, so a
payment timeout is waited for once per test, not once per provider.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from scripts.servers import Server
from tests.support.provider_drivers import Driver, Order, drivers
from tests.support.stack import Stack

TIMEOUT_SECONDS = 10
FINAL = ("CONFIRMED", "CANCELLED", "REFUNDED")


@pytest.fixture(scope="module")
def shop(pg_server: Server) -> Iterator[tuple[Stack, list[Driver]]]:
    enabled = drivers()
    names = ",".join(["sandbox", *(driver.name for driver in enabled)])
    stack = Stack(
        pg_server.url,
        ORDERSAGA_PAYMENT_PROVIDER=names,
        ORDERSAGA_PAYMENT_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        # A provider's outage in test_provider_outages lasts three failed calls.
        ORDERSAGA_STEP_MAX_RETRIES="6",
    )
    try:
        for driver in enabled:
            stack.env.update(driver.env(stack.base_url))
        stack.start_api()
        stack.start_worker()
        stack.start_beat()
        yield stack, enabled
    finally:
        stack.close()
        for driver in enabled:
            driver.stop()


class Purchase:
    """One buyer's order of two units with a coupon, through one provider."""

    def __init__(self, stack: Stack, provider: str) -> None:
        self.stack, self.provider = stack, provider
        self.goods, self.buyer = stack.goods(stock=5), stack.user()
        self.coupon = stack.coupon(self.buyer)
        body = {
            "items": [{"goods_id": self.goods["id"], "quantity": 2}],
            "coupon_id": self.coupon["id"],
            "payment_provider": provider,
        }
        placed = stack.call("POST", "/api/v1/orders", self.buyer["token"], json=body)
        assert placed.status_code == 202, placed.text
        self.order_id: str = placed.json()["id"]

    def awaiting(self) -> Order:
        order = self.stack.wait_order(self.order_id)
        assert order["status"] == "AWAITING_PAYMENT", (self.provider, order)
        assert order["payment"]["provider"] == self.provider, order
        return order

    def final(self, timeout: float = TIMEOUT_SECONDS + 45) -> Order:
        return self.stack.wait_order(self.order_id, FINAL, timeout=timeout)

    def coupon_status(self) -> str:
        path = f"/api/v1/coupons/{self.coupon['id']}"
        return str(self.stack.ok("GET", path, self.buyer["token"])["status"])

    def stock(self) -> tuple[int, int, int]:
        goods = self.stack.stock(self.goods["id"])
        return goods["stock_available"], goods["stock_reserved"], goods["stock_sold"]

    def cancel(self) -> None:
        self.stack.ok("POST", f"/api/v1/orders/{self.order_id}/cancel", self.buyer["token"])

    def webhook(self, signed: tuple[dict[str, str], bytes] | None) -> Any:
        assert signed is not None
        headers, raw = signed
        url = self.stack.url(f"/api/v1/payments/webhooks/{self.provider}")
        return self.stack.http.post(url, data=raw, headers=headers, timeout=30)


def purchases(stack: Stack, enabled: list[Driver]) -> list[tuple[Driver, Purchase, Order]]:
    placed = [(driver, Purchase(stack, driver.name)) for driver in enabled]
    return [(driver, purchase, purchase.awaiting()) for driver, purchase in placed]


def test_each_order_pays_through_the_provider_it_chose(shop: tuple[Stack, list[Driver]]) -> None:
    stack, enabled = shop
    started = purchases(stack, enabled)
    default = stack.place(stack.user(), [(stack.goods(stock=1)["id"], 1)]).json()
    for driver, _, order in started:
        assert driver.checkout_url_ok(order["payment"]["checkout_url"]), order["payment"]
        driver.pay(order)
    for driver, purchase, _ in started:
        order = purchase.final()
        assert (order["status"], order["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED"), (
            driver.name,
            order,
        )
        assert purchase.stock() == (3, 0, 2) and purchase.coupon_status() == "USED", driver.name
        assert driver.state(order) == "SUCCEEDED"
    assert stack.wait_order(default["id"])["payment"]["provider"] == "sandbox"


def test_a_declined_payment_cancels_the_order_and_returns_stock_and_coupon(
    shop: tuple[Stack, list[Driver]],
) -> None:
    stack, enabled = shop
    started = purchases(stack, enabled)
    for driver, _, order in started:
        driver.decline(order)
    for driver, purchase, _ in started:
        order = purchase.final()
        assert (order["status"], order["cancel_reason"]) == ("CANCELLED", driver.decline_reason), (
            driver.name,
            order,
        )
        assert purchase.stock() == (5, 0, 0) and purchase.coupon_status() == "AVAILABLE", driver.name


def test_an_unpaid_order_times_out_and_its_payment_is_closed_at_the_provider(
    shop: tuple[Stack, list[Driver]],
) -> None:
    stack, enabled = shop
    started = purchases(stack, enabled)
    for driver, _, order in started:
        driver.look(order)
    for driver, purchase, _ in started:
        order = purchase.final()
        assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "payment_timeout"), (
            driver.name,
            order,
        )
        assert order["payment"]["status"] == "VOIDED" and driver.state(order) == "VOIDED", driver.name
        assert purchase.stock() == (5, 0, 0) and purchase.coupon_status() == "AVAILABLE", driver.name


def test_a_payment_whose_notification_never_came_confirms_at_the_timeout(
    shop: tuple[Stack, list[Driver]],
) -> None:
    stack, enabled = shop
    started = purchases(stack, enabled)
    for driver, _, order in started:
        driver.pay(order, notify=False)
    for driver, purchase, _ in started:
        order = purchase.final()
        assert order["status"] == "CONFIRMED", (driver.name, order)
        assert purchase.stock() == (3, 0, 2) and purchase.coupon_status() == "USED", driver.name


def test_money_that_arrives_after_the_cancellation_is_refunded(shop: tuple[Stack, list[Driver]]) -> None:
    stack, enabled = shop
    started = purchases(stack, enabled)
    for _, purchase, _ in started:
        purchase.cancel()
    for driver, purchase, _ in started:
        order = purchase.final()
        assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "user_cancelled"), (
            driver.name,
            order,
        )
        driver.pay_after_close(order)
    for driver, purchase, _ in started:
        order = stack.wait_order(purchase.order_id, ("REFUNDED",), timeout=45)
        assert order["payment"]["status"] == "REFUNDED" and driver.state(order) == "REFUNDED", driver.name
        assert purchase.stock() == (5, 0, 0) and purchase.coupon_status() == "AVAILABLE", driver.name


def test_a_buyer_who_pays_while_the_close_is_in_flight_is_refunded_once(
    shop: tuple[Stack, list[Driver]],
) -> None:
    stack, enabled = shop
    started = purchases(stack, enabled)
    for driver, purchase, order in started:
        driver.pay_on_close(order)
        purchase.cancel()
    for driver, purchase, _ in started:
        order = stack.wait_order(purchase.order_id, ("CONFIRMED", "REFUNDED"), timeout=45)
        assert order["status"] == "REFUNDED", (driver.name, order)
        assert driver.state(order) == "REFUNDED", driver.name
        assert purchase.stock() == (5, 0, 0) and purchase.coupon_status() == "AVAILABLE", driver.name


def _announce_oversized(url: str, signed: tuple[dict[str, str], bytes]) -> tuple[int, dict[str, Any]]:
    """Post a notification whose Content-Length is past the largest body the service reads, and
    send only its first bytes: the answer comes from the length alone, before any body is read.
    (Sent whole, the refused rest of the body meets a closed connection, and a client may never
    see the answer.)"""
    headers, raw = signed
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
    lines.append(f"Content-Length: {len(raw) + 1024 * 1024}")
    with socket.create_connection((str(parts.hostname), int(parts.port or 80)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + raw)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def _refused(provider: str, response: Any, status: int) -> bool:
    if provider == "alipay" and status == 400:
        return response.status_code == 400 and response.text == "fail"
    return response.status_code == status and response.json()["status"] == status


def test_notifications_forged_stale_truncated_oversized_of_another_amount_or_repeated_change_nothing(
    shop: tuple[Stack, list[Driver]],
) -> None:
    stack, enabled = shop
    started = purchases(stack, enabled)
    for driver, purchase, order in started:
        refusals = [
            (400, driver.notification(order, forged=True)),
            (400, driver.notification(order, stale=True)),
            (422, driver.notification(order, amount_cents=order["payable_cents"] + 1)),
            (422, driver.notification(order, currency="USD")),
        ]
        genuine = driver.notification(order)
        assert genuine is not None
        headers, raw = genuine
        refusals += [
            (400, (headers, raw[: len(raw) // 2])),  # truncated: the signature no longer holds
            (400, (headers, raw + b" ")),  # one byte more, as well
        ]
        for status, signed in refusals:
            if signed is not None:
                assert _refused(driver.name, purchase.webhook(signed), status), (driver.name, status)
        status, problem = _announce_oversized(stack.url(f"/api/v1/payments/webhooks/{driver.name}"), genuine)
        assert (status, problem["status"]) == (413, 413), (driver.name, problem)
        assert stack.order(purchase.order_id)["status"] == "AWAITING_PAYMENT", driver.name
        first, again = purchase.webhook(genuine), purchase.webhook(genuine)
        assert first.status_code < 300 and again.status_code < 300, (driver.name, first.text, again.text)
    for driver, purchase, _ in started:
        order = purchase.final()
        assert order["status"] == "CONFIRMED", (driver.name, order)
        assert purchase.stock() == (3, 0, 2), driver.name
        payment = order["payment"]["provider_payment_id"]
        events = stack.sql("SELECT id FROM webhook_events WHERE provider_payment_id = :p", p=payment)
        assert len(events) == 1, (driver.name, events)  # the genuine one, once


def test_provider_outages_and_timeouts_are_retried_and_end_well(shop: tuple[Stack, list[Driver]]) -> None:
    stack, enabled = shop
    for driver in enabled:
        driver.fail_next(2)
        driver.hang_next(1)
    started = [(driver, Purchase(stack, driver.name)) for driver in enabled]
    for driver, purchase in started:
        order = stack.wait_order(purchase.order_id, timeout=90)
        assert order["status"] == "AWAITING_PAYMENT", (driver.name, order)
        steps = {step["name"]: step for step in stack.saga(order["saga"]["id"])["steps"]}
        # A stand-in may serve the hang and a failure on one call: at least two calls failed.
        assert steps["create_payment"]["attempts"] >= 3, (driver.name, steps["create_payment"])
        driver.pay(order)
    for driver, purchase in started:
        assert purchase.final()["status"] == "CONFIRMED", driver.name
