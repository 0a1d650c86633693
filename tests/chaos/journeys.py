"""The buyers of a chaos run: each journey places one order and follows its plan to the end,
and every answer it gets is recorded for the checker.

A buyer behaves as a careful client does: a request without an idempotency key is sent once
(after an error the buyer cannot know whether it was taken); one with a key is sent again until
it is answered; a 429 or 503 is retried after its Retry-After.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.chaos import plan
from tests.chaos.tracker import Tracker
from tests.support.api import ADMIN, bearer, unique
from tests.support.webhooks import URL as WEBHOOK_URL
from tests.support.webhooks import event, signed

NO_ANSWER = 0  # the status recorded when the request got no answer at all
WAITING = ("AWAITING_PAYMENT", "CONFIRMED", "CANCELLED", "REFUNDED")
TERMINAL = ("CONFIRMED", "CANCELLED", "REFUNDED")
SETTLE_WAIT = 150.0  # seconds a buyer waits for its order to move, faults included
RETRIES = 20
# Buyers at once: most wait, for their order or their payment timeout. Enough that a journey
# starts when the plan says even while a fault holds everything up.
MAX_BUYERS = 1024


@dataclass(frozen=True)
class Answer:
    journey: int
    action: str
    status: int  # HTTP status, NO_ANSWER if none came
    order_id: str | None = None
    detail: str = ""


@dataclass
class Shop:
    """What the operator set up before the run: goods to order, one flash sale."""

    goods: list[dict[str, Any]]
    scarce: dict[str, Any]  # goods with little stock, so that some orders find none
    sale: dict[str, Any]
    users: dict[int, dict[str, Any]] = field(default_factory=dict)  # by journey
    coupons: dict[int, dict[str, Any]] = field(default_factory=dict)


class Buyers:
    def __init__(self, base_url: str, shop: Shop, tracker: Tracker, payment_timeout: float) -> None:
        self.base_url = base_url
        self.shop = shop
        self.tracker = tracker
        self.payment_timeout = payment_timeout
        self.answers: list[Answer] = []
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=MAX_BUYERS, thread_name_prefix="buyer")
        self.futures: list[Any] = []

    def begin(self, journey: plan.Journey) -> None:
        self.futures.append(self.pool.submit(self._journey, journey))

    def finish(self, timeout: float) -> int:
        """Wait for the journeys to end; how many were still going after `timeout`."""
        deadline = time.monotonic() + timeout
        for future in self.futures:
            with contextlib.suppress(TimeoutError):
                future.result(max(0.0, deadline - time.monotonic()))
        self.pool.shutdown(wait=False, cancel_futures=True)
        return sum(not f.done() for f in self.futures)

    # -- one journey ----------------------------------------------------------------------------

    def _journey(self, journey: plan.Journey) -> None:
        order_id = self._place(journey)
        if order_id is None:
            return
        status = self.tracker.wait(order_id, WAITING, SETTLE_WAIT)
        if status != "AWAITING_PAYMENT":
            return
        order = self._order(journey, order_id)
        if order is None or order["payment"] is None:
            return
        time.sleep(journey.think)
        self._follow(journey, order)
        self.tracker.wait(order_id, TERMINAL, SETTLE_WAIT)

    def _place(self, journey: plan.Journey) -> str | None:
        if journey.start == plan.FLASH:
            request = f"POST /api/v1/flash-sales/{self.shop.sale['id']}/purchase"
            body = {"quantity": journey.quantity}
            answer = self._send(journey, "flash purchase", request, json=body, headers=self._as(journey))
            return answer.order_id if answer.status == 202 else None
        scarce = journey.number % 10 == 0
        goods = self.shop.scarce if scarce else self.shop.goods[journey.number % len(self.shop.goods)]
        order: dict[str, Any] = {"items": [{"goods_id": goods["id"], "quantity": journey.quantity}]}
        if journey.start == plan.WITH_COUPON:
            order["coupon_id"] = self.shop.coupons[journey.number]["id"]
        if journey.start != plan.WITH_KEY:
            answer = self._send(
                journey, journey.start, "POST /api/v1/orders", json=order, headers=self._as(journey)
            )
            return answer.order_id if answer.status == 202 else None
        keyed = self._as(journey, **{"Idempotency-Key": unique(f"chaos-{journey.number}")})
        first = self._send(
            journey, "order+key", "POST /api/v1/orders", idempotent=True, json=order, headers=keyed
        )
        if first.status != 202:
            return None
        self._send(
            journey, "order+key replayed", "POST /api/v1/orders", idempotent=True, json=order, headers=keyed
        )
        return first.order_id

    def _follow(self, journey: plan.Journey, order: dict[str, Any]) -> None:
        fate = journey.fate
        if fate in (plan.PAY_CHECKOUT, plan.PAY_WITH_DUPLICATES):
            paid = self._checkout(journey, order, "pay")
            if fate == plan.PAY_WITH_DUPLICATES and paid.status == 303:
                self._duplicates(journey, order)
        elif fate == plan.DECLINE:
            self._checkout(journey, order, "decline")
        elif fate == plan.CANCEL:
            self._cancel(journey, order)
        elif fate == plan.CANCEL_WHILE_PAYING:
            racing = threading.Thread(target=self._checkout, args=(journey, order, "pay"))
            racing.start()
            self._cancel(journey, order)
            racing.join()
        elif fate == plan.PAY_AFTER_TIMEOUT and self._cancelled(order["id"]):
            self._checkout(journey, order, "pay")
        # plan.TIME_OUT: the buyer walks away.

    def _cancelled(self, order_id: str) -> bool:
        return self.tracker.wait(order_id, TERMINAL, self.payment_timeout + SETTLE_WAIT) == "CANCELLED"

    def _cancel(self, journey: plan.Journey, order: dict[str, Any]) -> None:
        request = f"POST /api/v1/orders/{order['id']}/cancel"
        self._send(journey, "cancel", request, idempotent=True, order=order["id"], headers=self._as(journey))

    def _checkout(self, journey: plan.Journey, order: dict[str, Any], outcome: str) -> Answer:
        """The buyer's click on the checkout page: sent once, as a browser would."""
        request = f"POST /sandbox/checkout/{order['payment']['provider_payment_id']}/{outcome}"
        origin = {"Origin": self.base_url}
        return self._send(journey, f"checkout {outcome}", request, order=order["id"], headers=origin)

    def _duplicates(self, journey: plan.Journey, order: dict[str, Any]) -> None:
        """The provider's success again, twice under one event id, and a stale one after the
        order has moved on: each is 200, and nothing happens twice."""
        once = signed(event(order["payment"], "payment.succeeded", f"evt_chaos_{journey.number}_a"))
        for _ in range(2):
            self._webhook(journey, "webhook duplicate", order["id"], once)
        self.tracker.wait(order["id"], TERMINAL, SETTLE_WAIT)
        stale = signed(event(order["payment"], "payment.succeeded", f"evt_chaos_{journey.number}_b"))
        self._webhook(journey, "webhook out of order", order["id"], stale)

    def _webhook(
        self, journey: plan.Journey, action: str, order_id: str, sent: tuple[bytes, dict[str, str]]
    ) -> None:
        raw, headers = sent
        self._send(
            journey, action, f"POST {WEBHOOK_URL}", idempotent=True, order=order_id, data=raw, headers=headers
        )

    def _order(self, journey: plan.Journey, order_id: str) -> dict[str, Any] | None:
        request = f"GET /api/v1/orders/{order_id}"
        answer = self._send(journey, "read order", request, idempotent=True, headers=self._as(journey))
        return self.local.last_body if answer.status == 200 else None

    # -- HTTP -----------------------------------------------------------------------------------

    def _send(
        self,
        journey: plan.Journey,
        action: str,
        request: str,
        *,
        idempotent: bool = False,
        order: str | None = None,
        **kwargs: Any,
    ) -> Answer:
        """Send `request` ("METHOD /path") and record the answer. A 429 or 503 is sent again (the
        service did nothing); no answer at all, only if sending twice does no harm."""
        if not hasattr(self.local, "http"):
            self.local.http = requests.Session()
        method, path = request.split(" ", 1)
        for attempt in range(RETRIES):
            try:
                response = self.local.http.request(
                    method, self.base_url + path, timeout=15, allow_redirects=False, **kwargs
                )
            except requests.RequestException as error:
                answer = Answer(journey.number, action, NO_ANSWER, order, error.__class__.__name__)
            else:
                answer = self._answer(journey, action, response, order)
            again = answer.status in (429, 503) or (
                idempotent and (answer.status == NO_ANSWER or answer.detail == "conflict")
            )
            if not again or attempt == RETRIES - 1:
                self.answers.append(answer)
                return answer
            time.sleep(min(5.0, 0.5 * (attempt + 1)))
        raise AssertionError("unreachable")

    def _as(self, journey: plan.Journey, **headers: str) -> dict[str, str]:
        return {**bearer(self.shop.users[journey.number]["token"]), **headers}

    def _answer(
        self, journey: plan.Journey, action: str, response: requests.Response, order: str | None
    ) -> Answer:
        body: Any = None
        if response.headers.get("Content-Type", "").endswith("json"):
            body = response.json()
        self.local.last_body = body
        detail = ""
        if isinstance(body, dict):
            named = body.get("order_id") or body.get("id")
            if isinstance(named, str) and named.startswith("ord"):
                order = named
            detail = str(body.get("code") or body.get("status") or "")
        if response.headers.get("Idempotent-Replayed"):
            detail = "replayed"
        return Answer(journey.number, action, response.status_code, order, detail)


def set_up_shop(base_url: str, journeys: tuple[plan.Journey, ...], flash_units: int) -> Shop:
    """The operator's goods, sale, buyers and coupons, before the faults begin."""
    from datetime import UTC, datetime, timedelta

    http = requests.Session()
    http.headers.update(ADMIN)

    def ok(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.request(method, base_url + path, json=body, timeout=30)
        assert response.status_code < 300, (path, response.status_code, response.text)
        created: dict[str, Any] = response.json()
        return created

    goods = [
        ok(
            "POST",
            "/api/v1/goods",
            {"sku": unique("chaos"), "name": "Tea", "price_cents": price, "stock": 100_000},
        )
        for price in (990, 1500, 4200, 250)
    ]
    scarce = ok(
        "POST",
        "/api/v1/goods",
        {"sku": unique("scarce"), "name": "Rare tea", "price_cents": 8800, "stock": 5},
    )
    on_sale = ok(
        "POST",
        "/api/v1/goods",
        {"sku": unique("flash"), "name": "Sale tea", "price_cents": 3000, "stock": flash_units},
    )
    now = datetime.now(UTC)
    sale = ok(
        "POST",
        "/api/v1/flash-sales",
        {
            "goods_id": on_sale["id"],
            "price_cents": 500,
            "quantity": flash_units,
            "per_user_limit": 2,
            "starts_at": (now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ends_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    shop = Shop(goods, scarce, sale)
    for journey in journeys:
        shop.users[journey.number] = ok(
            "POST",
            "/api/v1/users",
            {"name": "Buyer", "email": f"{unique('chaos')}-{journey.number}@example.com"},
        )
        if journey.start == plan.WITH_COUPON:
            user_id = shop.users[journey.number]["id"]
            amount = 300 if journey.number % 7 else 100_000  # now and then a coupon that pays it all
            shop.coupons[journey.number] = ok(
                "POST", f"/api/v1/users/{user_id}/coupons", {"amount_off_cents": amount}
            )
    http.close()
    return shop
