"""The sandbox webhook, in-process on PostgreSQL: the contract's table of answers, and exactly
one effect per event."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.extension import runtime
from app.models.orders import Order
from app.models.outbox import OutboxMessage
from app.models.payments import Payment
from app.models.webhooks import WebhookEvent
from app.payments import Providers
from app.services import coupons, goods, members, order_saga, orders, payment_events, users
from app.services.payment_events import REFUND_TASK, TIMEOUT_TASK
from app.services.webhooks import expected_signature
from app.timeutil import utcnow
from sagas.engine import SagaEngine
from sagas.models import Saga
from tests.support.api import assert_problem
from tests.support.env import WEBHOOK_SECRET
from tests.support.fakes import FakeProvider
from tests.support.webhooks import URL, event, signed


@pytest.fixture
def awaiting(app: Flask) -> Iterator[dict[str, Any]]:
    """An order in AWAITING_PAYMENT, driven there step by step with a fake provider."""
    app_state = runtime(app)
    definition = order_saga.build(app_state.db.uow, Providers([FakeProvider()]), app_state.settings)
    engine = SagaEngine(app_state.db.uow, {definition.name: definition})
    with app_state.db.uow() as uow:
        user_id = users.create_user(uow, "W", "hook@example.com").user.id
    with app_state.db.uow() as uow:
        goods_id = goods.create_goods(uow, "HOOK-1", "Tea", 1500, 5).id
    with app_state.db.uow() as uow:
        coupon_id = coupons.create_coupon(uow, user_id, 200, 0, None).id
    placed = orders.place_order(
        app_state.db.uow, engine, orders.NewOrder(user_id, [orders.Line(goods_id, 2)], coupon_id)
    )
    saga_id = placed.order.saga.id  # type: ignore[union-attr]
    for step in ("reserve_stock", "lock_coupon", "create_payment"):
        engine.run_action(saga_id, step)
    with app_state.db.uow() as uow:
        payment = uow.session.scalar(select(Payment).where(Payment.order_id == placed.order.id))
        assert payment is not None
        yield {
            "order_id": placed.order.id,
            "saga_id": saga_id,
            "provider_payment_id": payment.provider_payment_id,
            "amount_cents": payment.amount_cents,
        }


def _state(app: Flask, awaiting: dict[str, Any]) -> tuple[str, str, str, int, int]:
    with runtime(app).db.uow() as uow:
        order = uow.session.get(Order, awaiting["order_id"])
        saga = uow.session.get(Saga, awaiting["saga_id"])
        assert order is not None and order.payment is not None and saga is not None
        events = uow.session.scalar(select(func.count()).select_from(WebhookEvent)) or 0
        confirms = (
            uow.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.task == "orders.saga.confirm_order")
            )
            or 0
        )
        return order.status, order.payment.status, saga.status, events, confirms


def test_a_valid_success_pays_the_order_once(
    client: FlaskClient, app: Flask, awaiting: dict[str, Any]
) -> None:
    assert _state(app, awaiting)[:3] == ("AWAITING_PAYMENT", "PENDING", "AWAITING_PAYMENT")
    raw, headers = signed(event(awaiting))
    response = client.post(URL, data=raw, headers=headers)
    assert response.status_code == 200 and response.get_json() == {"received": True}
    assert _state(app, awaiting) == ("PAID", "SUCCEEDED", "RUNNING", 1, 1)

    again = client.post(URL, data=raw, headers=headers)  # the provider retries the same event
    assert again.status_code == 200 and again.get_json() == {"received": True}
    assert _state(app, awaiting) == ("PAID", "SUCCEEDED", "RUNNING", 1, 1)


@pytest.mark.parametrize(
    "case",
    ["no-header", "wrong-secret", "tampered-body", "truncated", "stale", "future", "garbage-header", "no-v1"],
)
def test_bad_signatures_are_400(client: FlaskClient, app: Flask, awaiting: dict[str, Any], case: str) -> None:
    body = event(awaiting)
    raw, headers = signed(body)
    if case == "no-header":
        headers.pop("Sandbox-Signature")
    elif case == "wrong-secret":
        raw, headers = signed(body, secret="not-the-secret")
    elif case == "tampered-body":
        raw = raw.replace(b'"payment.succeeded"', b'"payment.failed"')
    elif case == "truncated":
        raw = raw[: len(raw) // 2]
    elif case == "stale":
        raw, headers = signed(body, at=time.time() - 301)
    elif case == "future":
        raw, headers = signed(body, at=time.time() + 301)
    elif case == "garbage-header":
        headers["Sandbox-Signature"] = "t=abc,v1=zz"
    else:
        headers["Sandbox-Signature"] = headers["Sandbox-Signature"].split(",")[0]
    assert_problem(client.post(URL, data=raw, headers=headers), 400, "invalid-signature")
    assert _state(app, awaiting) == ("AWAITING_PAYMENT", "PENDING", "AWAITING_PAYMENT", 0, 0)


def test_an_oversized_notification_is_413_and_changes_nothing(
    client: FlaskClient, app: Flask, awaiting: dict[str, Any]
) -> None:
    raw, headers = signed(event(awaiting))
    response = client.post(URL, data=raw + b" " * (1024 * 1024), headers=headers)
    assert_problem(response, 413, "validation")
    assert _state(app, awaiting) == ("AWAITING_PAYMENT", "PENDING", "AWAITING_PAYMENT", 0, 0)


@pytest.mark.parametrize("change", [{"amount_cents": 1}, {"currency": "USD"}])
def test_amount_or_currency_mismatch_changes_nothing(
    client: FlaskClient, app: Flask, awaiting: dict[str, Any], change: dict[str, Any]
) -> None:
    raw, headers = signed(event(awaiting, **change))
    assert_problem(client.post(URL, data=raw, headers=headers), 422, "amount-mismatch")
    assert _state(app, awaiting) == ("AWAITING_PAYMENT", "PENDING", "AWAITING_PAYMENT", 0, 0)


def test_unknown_payment_is_404(client: FlaskClient, app: Flask, awaiting: dict[str, Any]) -> None:
    raw, headers = signed(event({**awaiting, "provider_payment_id": "sbx_unknown"}))
    assert_problem(client.post(URL, data=raw, headers=headers), 404, "not-found")


@pytest.mark.parametrize(
    "body",
    [
        {"id": "e"},
        {"id": 1, "type": "payment.succeeded", "created": 1, "data": {}},
        {"id": "e", "type": "payment.lost", "created": 1, "data": {}},
        [1, 2],
    ],
)
def test_a_signed_but_malformed_event_is_422(
    client: FlaskClient, awaiting: dict[str, Any], body: Any
) -> None:
    raw, headers = signed(body)
    assert_problem(client.post(URL, data=raw, headers=headers), 422, "validation")
    raw = b"{not json"
    timestamp = str(int(time.time()))
    headers["Sandbox-Signature"] = f"t={timestamp},v1={expected_signature(WEBHOOK_SECRET, timestamp, raw)}"
    assert_problem(client.post(URL, data=raw, headers=headers), 422, "validation")


def test_a_failed_payment_cancels_and_compensates(
    client: FlaskClient, app: Flask, awaiting: dict[str, Any]
) -> None:
    raw, headers = signed(event(awaiting, kind="payment.failed", event_id="evt_failed"))
    assert client.post(URL, data=raw, headers=headers).status_code == 200
    status, payment_status, saga_status, events, _ = _state(app, awaiting)
    assert (status, payment_status, saga_status, events) == ("CANCELLING", "FAILED", "COMPENSATING", 1)
    with runtime(app).db.uow() as uow:
        order = uow.session.get(Order, awaiting["order_id"])
        assert order is not None and order.cancel_reason == "payment_failed"
    # A success arriving after the failure changes nothing more at this point.
    raw, headers = signed(event(awaiting, event_id="evt_late"))
    assert client.post(URL, data=raw, headers=headers).status_code == 200
    assert _state(app, awaiting)[0] == "CANCELLING"


def test_the_sweep_queues_again_a_refund_that_never_finished(app: Flask, awaiting: dict[str, Any]) -> None:
    """Money held for a cancelled order whose refund task gave up: after the stale time the sweep
    queues the refund again, once per stale time, and leaves everything else alone."""
    with runtime(app).db.uow() as uow:
        uow.session.execute(update(Order).where(Order.id == awaiting["order_id"]).values(status="CANCELLED"))
        uow.session.execute(
            update(Payment)
            .where(Payment.order_id == awaiting["order_id"])
            .values(status="SUCCEEDED", updated_at=utcnow() - timedelta(minutes=5))
        )
        uow.commit()

    def refunds_queued() -> list[str]:
        with runtime(app).db.uow() as uow:
            rows = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.task == REFUND_TASK))
            return [row.kwargs["order_id"] for row in rows]

    stale = timedelta(minutes=2)
    with runtime(app).db.uow() as uow:
        assert payment_events.queue_unfinished_refunds(uow, stale) == 1
    assert refunds_queued() == [awaiting["order_id"]]
    with runtime(app).db.uow() as uow:
        assert payment_events.queue_unfinished_refunds(uow, stale) == 0  # its turn comes again later
    assert refunds_queued() == [awaiting["order_id"]]


def set_deadline(app: Flask, order_id: str, due_in: timedelta, queued_in: timedelta | None = None) -> None:
    """Make the order await payment until `due_in` from now, its timeout queued `queued_in` from
    now (None: not queued)."""
    now = utcnow()
    with runtime(app).db.uow() as uow:
        uow.session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(
                status="AWAITING_PAYMENT",
                payment_deadline=now + due_in,
                timeout_queued_at=None if queued_in is None else now + queued_in,
            )
        )
        uow.commit()


def timeouts_queued(app: Flask) -> list[Any]:
    """The ETA of every payment timeout in the outbox."""
    with runtime(app).db.uow() as uow:
        rows = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.task == TIMEOUT_TASK))
        return [row.eta for row in rows]


def test_a_far_deadline_is_queued_by_the_sweep_only_once_it_is_near(
    app: Flask, awaiting: dict[str, Any]
) -> None:
    """A 15-minute deadline is no ETA task yet (a worker would hold it in memory for 15
    minutes); the sweep queues it, once, when it comes within the horizon."""
    set_deadline(app, awaiting["order_id"], timedelta(minutes=15))
    with runtime(app).db.uow() as uow:
        payment_events.schedule_timeout(uow, awaiting["saga_id"], awaiting["order_id"], timedelta(minutes=2))
        uow.commit()
    assert timeouts_queued(app) == []
    with runtime(app).db.uow() as uow:
        assert payment_events.queue_near_timeouts(uow, timedelta(minutes=2)) == 0  # not near yet
    with runtime(app).db.uow() as uow:
        assert payment_events.queue_near_timeouts(uow, timedelta(minutes=16)) == 1
    with runtime(app).db.uow() as uow:
        assert payment_events.queue_near_timeouts(uow, timedelta(minutes=16)) == 0  # queued once
        deadline = uow.session.get(Order, awaiting["order_id"]).payment_deadline  # type: ignore[union-attr]
    assert timeouts_queued(app) == [deadline]


def test_a_sweep_skips_the_timeouts_another_sweep_is_queuing(app: Flask, awaiting: dict[str, Any]) -> None:
    """Two sweeps at once (beat's next one while a slow one still queues thousands) must not
    both queue an order's timeout: the worker would hold its ETA task twice. The second skips
    the orders the first holds, at once, and leaves them to it."""
    set_deadline(app, awaiting["order_id"], timedelta(minutes=1))

    def sweep() -> int:
        with runtime(app).db.uow() as uow:
            return payment_events.queue_near_timeouts(uow, timedelta(minutes=2))

    with ThreadPoolExecutor(max_workers=1) as pool, runtime(app).db.uow() as first:
        # The first sweep has read and locked the order and is still queuing.
        first.session.execute(select(Order.id).where(Order.id == awaiting["order_id"]).with_for_update())
        second = pool.submit(sweep)
        try:
            assert second.result(timeout=10) == 0  # skipped, not waited for
        finally:
            first.rollback()
    assert sweep() == 1
    assert sweep() == 0


def test_the_backstop_queues_an_overdue_timeout_once_until_it_is_stale(
    app: Flask, awaiting: dict[str, Any]
) -> None:
    """An order past its deadline whose ETA task was lost is queued again, due now; while the
    worker catches up, the next sweeps leave it alone, and queue it once more only after twice
    the stale limit, then after four times (app.backoff)."""
    order_id, stale = awaiting["order_id"], timedelta(minutes=2)

    def backstop() -> int:
        with runtime(app).db.uow() as uow:
            return payment_events.queue_overdue_timeouts(uow, stale)

    set_deadline(app, order_id, timedelta(seconds=30), queued_in=timedelta(seconds=-30))
    assert backstop() == 0  # not due yet
    set_deadline(app, order_id, timedelta(seconds=-1), queued_in=timedelta(seconds=-31))  # its ETA task lost
    assert backstop() == 1
    assert timeouts_queued(app) == [None]  # due now
    assert backstop() == 0  # queued after the deadline, and not stale yet
    set_deadline(app, order_id, timedelta(minutes=-5), queued_in=timedelta(minutes=-3))
    assert backstop() == 0  # queued once past the deadline already: it now waits twice the limit
    set_deadline(app, order_id, timedelta(minutes=-5), queued_in=timedelta(minutes=-4, seconds=-1))
    assert backstop() == 1
    assert backstop() == 0
    assert len(timeouts_queued(app)) == 2
    set_deadline(app, order_id, timedelta(minutes=-10), queued_in=timedelta(minutes=-7))
    assert backstop() == 0  # and then four times
    set_deadline(app, order_id, timedelta(minutes=-10), queued_in=timedelta(minutes=-8, seconds=-1))
    assert backstop() == 1
    assert len(timeouts_queued(app)) == 3


def test_into_a_backlog_the_backstop_queues_only_a_timeout_overdue_by_the_longest_wait(
    app: Flask, awaiting: dict[str, Any]
) -> None:
    """While the payments queue has a backlog, the ETA task of an order just past its deadline
    is most likely waiting in it: the timeout goes out again only once it is overdue by the
    back-off's longest wait."""
    order_id, longest = awaiting["order_id"], timedelta(minutes=32)

    def backstop() -> int:
        with runtime(app).db.uow() as uow:
            return payment_events.queue_overdue_timeouts(uow, longest, overdue_by=longest)

    set_deadline(app, order_id, timedelta(minutes=-31), queued_in=timedelta(minutes=-46))
    assert backstop() == 0
    set_deadline(app, order_id, timedelta(minutes=-33), queued_in=timedelta(minutes=-48))
    assert backstop() == 1
    assert backstop() == 0


def test_points_whose_credit_was_lost_are_queued_again_less_and_less_often(
    app: Flask, awaiting: dict[str, Any]
) -> None:
    """A confirmed order whose credit message the broker lost (a Redis restart) is queued again
    after the stale limit, then after twice it; once credited, never again."""
    order_id, stale = awaiting["order_id"], timedelta(minutes=2)
    db = runtime(app).db

    def confirmed(ago: timedelta) -> None:
        with db.uow() as uow:
            moved = utcnow() - ago
            uow.session.execute(
                update(Order).where(Order.id == order_id).values(status="CONFIRMED", updated_at=moved)
            )
            uow.commit()

    def backstop() -> int:
        with db.uow() as uow:
            return members.queue_uncredited(uow, stale)

    def credits_queued() -> int:
        with db.uow() as uow:
            rows = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.task == members.CREDIT_POINTS_TASK)
            )
            return len(list(rows))

    confirmed(timedelta(minutes=1))
    assert backstop() == 0  # its own credit may still be on its way
    confirmed(timedelta(minutes=2, seconds=1))
    assert (backstop(), backstop(), credits_queued()) == (1, 0, 1)
    confirmed(timedelta(minutes=3))
    assert backstop() == 0  # queued again once: the next waits until twice the limit
    confirmed(timedelta(minutes=4, seconds=1))
    assert (backstop(), credits_queued()) == (1, 2)
    with db.uow() as uow:
        assert members.credit_points(uow, order_id) == (1500 * 2 - 200) // 100
    confirmed(timedelta(hours=5))
    assert backstop() == 0  # credited: nothing more to send
