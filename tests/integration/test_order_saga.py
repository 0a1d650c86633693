"""The order saga on real processes: gunicorn (with the sandbox provider), a celery worker on
every queue, beat, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from scripts.servers import Server
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    with running_stack(pg_server.url) as running:
        yield running


def _conserved(stack: Stack, goods: dict[str, object], total: int) -> dict[str, object]:
    now = stack.stock(str(goods["id"]))
    assert now["stock_available"] + now["stock_reserved"] + now["stock_sold"] == total
    assert min(now["stock_available"], now["stock_reserved"], now["stock_sold"]) >= 0
    return now


def test_happy_path_reaches_awaiting_payment_with_everything_held(stack: Stack) -> None:
    tea, cup = stack.goods(stock=10, price_cents=1200), stack.goods(stock=5, price_cents=450)
    buyer = stack.user()
    coupon = stack.coupon(buyer, amount_off_cents=500, min_order_cents=1000)

    response = stack.place(buyer, [(tea["id"], 2), (cup["id"], 3)], coupon["id"])
    assert response.status_code == 202
    placed = response.json()
    assert response.headers["Location"].endswith(f"/api/v1/orders/{placed['id']}")
    assert placed["status"] == "PENDING" and placed["payment"] is None
    assert (placed["total_cents"], placed["discount_cents"], placed["payable_cents"]) == (3750, 500, 3250)
    assert [(i["goods_id"], i["quantity"], i["unit_price_cents"]) for i in placed["items"]] == [
        (tea["id"], 2, 1200),
        (cup["id"], 3, 450),
    ]

    order = stack.wait_order(placed["id"])
    assert order["status"] == "AWAITING_PAYMENT", order
    assert order["payment_deadline"] and order["payment_deadline"].endswith("Z")
    assert order["saga"]["status"] == "AWAITING_PAYMENT"
    payment = order["payment"]
    assert (
        payment["status"] == "PENDING"
        and payment["amount_cents"] == 3250
        and payment["provider"] == "sandbox"
    )
    assert payment["checkout_url"].startswith(f"{stack.base_url}/sandbox/checkout/")
    at_provider = stack.ok(
        "GET",
        f"/sandbox/api/payments/{payment['provider_payment_id']}",
        headers={"Authorization": "Bearer test-sandbox-api-key"},
    )
    assert (at_provider["status"], at_provider["amount_cents"]) == ("pending", 3250)

    assert (stack.stock(tea["id"])["stock_available"], stack.stock(tea["id"])["stock_reserved"]) == (8, 2)
    assert (stack.stock(cup["id"])["stock_available"], stack.stock(cup["id"])["stock_reserved"]) == (2, 3)
    coupons = stack.ok("GET", "/api/v1/me/coupons", buyer["token"])["items"]
    assert [c["status"] for c in coupons] == ["LOCKED"]

    saga = stack.saga(order["saga"]["id"])
    assert [(s["name"], s["kind"], s["status"]) for s in saga["steps"]] == [
        ("reserve_stock", "action", "SUCCEEDED"),
        ("lock_coupon", "action", "SUCCEEDED"),
        ("create_payment", "action", "SUCCEEDED"),
        ("await_payment", "action", "RUNNING"),
        ("confirm_order", "action", "PENDING"),
    ]


def test_insufficient_stock_on_the_second_line_cancels_and_returns_everything(stack: Stack) -> None:
    plenty, scarce = stack.goods(stock=10), stack.goods(stock=1)
    buyer = stack.user()
    coupon = stack.coupon(buyer)
    placed = stack.place(buyer, [(plenty["id"], 2), (scarce["id"], 2)], coupon["id"]).json()

    order = stack.wait_order(placed["id"])
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "insufficient_stock")
    assert order["saga"]["status"] == "COMPENSATED"
    assert stack.stock(plenty["id"])["stock_available"] == 10
    assert stack.stock(plenty["id"])["stock_reserved"] == 0
    assert stack.stock(scarce["id"])["stock_available"] == 1
    assert stack.ok("GET", f"/api/v1/coupons/{coupon['id']}", buyer["token"])["status"] == "AVAILABLE"


def test_coupon_taken_releases_the_reserved_stock_in_reverse(stack: Stack) -> None:
    tea = stack.goods(stock=4, price_cents=1000)
    buyer = stack.user()
    coupon = stack.coupon(buyer, min_order_cents=50_000)  # the order is too small for it
    placed = stack.place(buyer, [(tea["id"], 3)], coupon["id"]).json()

    order = stack.wait_order(placed["id"])
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "coupon_unavailable")
    saga = stack.saga(order["saga"]["id"])
    assert [(s["name"], s["kind"], s["status"]) for s in saga["steps"]][-1] == (
        "release_stock",
        "compensation",
        "SUCCEEDED",
    )
    assert saga["status"] == "COMPENSATED"
    assert stack.stock(tea["id"])["stock_available"] == 4 and stack.stock(tea["id"])["stock_reserved"] == 0


def test_forty_buyers_for_ten_units(stack: Stack) -> None:
    goods = stack.goods(stock=10)
    buyers = [stack.user() for _ in range(40)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda b: stack.place(b, [(goods["id"], 1)]), buyers))
    assert [r.status_code for r in responses] == [202] * 40

    final = [stack.wait_order(r.json()["id"], timeout=120)["status"] for r in responses]
    assert final.count("AWAITING_PAYMENT") == 10
    assert final.count("CANCELLED") == 30
    now = _conserved(stack, goods, 10)
    assert (now["stock_available"], now["stock_reserved"]) == (0, 10)


def test_five_orders_race_for_one_coupon(stack: Stack) -> None:
    goods = stack.goods(stock=100)
    buyer = stack.user()
    coupon = stack.coupon(buyer)
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: stack.place(buyer, [(goods["id"], 1)], coupon["id"]), range(5)))
    orders = [stack.wait_order(r.json()["id"]) for r in responses]
    assert sorted(o["status"] for o in orders) == ["AWAITING_PAYMENT"] + ["CANCELLED"] * 4
    assert {o["cancel_reason"] for o in orders if o["status"] == "CANCELLED"} == {"coupon_unavailable"}
    holders = stack.sql("SELECT order_id FROM coupons WHERE id = :id AND status = 'LOCKED'", id=coupon["id"])
    winner = next(o for o in orders if o["status"] == "AWAITING_PAYMENT")
    assert [row.order_id for row in holders] == [winner["id"]]
    _conserved(stack, goods, 100)


def test_buyer_cancels_while_awaiting_payment(stack: Stack) -> None:
    goods = stack.goods(stock=3)
    buyer, other = stack.user(), stack.user()
    coupon = stack.coupon(buyer)
    order = stack.wait_order(stack.place(buyer, [(goods["id"], 2)], coupon["id"]).json()["id"])
    assert order["status"] == "AWAITING_PAYMENT"

    assert stack.call("POST", f"/api/v1/orders/{order['id']}/cancel", other["token"]).status_code == 404
    response = stack.call("POST", f"/api/v1/orders/{order['id']}/cancel", buyer["token"])
    assert response.status_code == 202
    assert response.json()["status"] in ("CANCELLING", "CANCELLED")
    cancelled = stack.wait_order(order["id"], ("CANCELLED",))
    assert cancelled["cancel_reason"] == "user_cancelled"
    assert cancelled["payment"]["status"] == "VOIDED"
    at_provider = stack.ok(
        "GET",
        f"/sandbox/api/payments/{order['payment']['provider_payment_id']}",
        headers={"Authorization": "Bearer test-sandbox-api-key"},
    )
    assert at_provider["status"] == "voided"
    assert stack.stock(goods["id"])["stock_available"] == 3
    assert stack.ok("GET", f"/api/v1/coupons/{coupon['id']}", buyer["token"])["status"] == "AVAILABLE"

    again = stack.call("POST", f"/api/v1/orders/{order['id']}/cancel", buyer["token"])
    assert again.status_code == 200 and again.json()["status"] == "CANCELLED"
    assert again.json()["updated_at"] == cancelled["updated_at"]


def test_buyer_cancels_a_pending_order(stack: Stack) -> None:
    """Cancelled right after placing: whatever the saga had done by then is undone."""
    goods = stack.goods(stock=5)
    buyer = stack.user()
    placed = stack.place(buyer, [(goods["id"], 1)]).json()
    assert stack.call("POST", f"/api/v1/orders/{placed['id']}/cancel", buyer["token"]).status_code in (
        200,
        202,
    )
    order = stack.wait_order(placed["id"], ("CANCELLED",))
    assert order["cancel_reason"] == "user_cancelled"
    assert stack.saga(order["saga"]["id"])["status"] == "COMPENSATED"
    _conserved(stack, goods, 5)
    assert stack.stock(goods["id"])["stock_available"] == 5


def test_nothing_to_pay_confirms_at_once(stack: Stack) -> None:
    goods = stack.goods(stock=2, price_cents=300)
    buyer = stack.user()
    coupon = stack.coupon(buyer, amount_off_cents=1000)
    order = stack.wait_order(stack.place(buyer, [(goods["id"], 1)], coupon["id"]).json()["id"])
    assert (order["status"], order["payable_cents"], order["payment"]) == ("CONFIRMED", 0, None)
    assert stack.saga(order["saga"]["id"])["status"] == "COMPLETED"
    assert stack.stock(goods["id"])["stock_sold"] == 1
    assert stack.ok("GET", f"/api/v1/coupons/{coupon['id']}", buyer["token"])["status"] == "USED"
