"""Interleavings that must stay safe: duplicates of a step, cancellations that
land mid-step, an abandoned idempotency key taken over, and money paid before a cancellation."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update

from app.errors import Conflict
from app.models.coupons import Coupon
from app.models.orders import IdempotencyKey, Order
from app.models.outbox import OutboxMessage
from app.models.payments import Payment
from app.payments import Providers
from app.payments.port import PaymentStatus, ProviderPayment, ProviderUnavailable
from app.services import coupons, orders, payment_events
from app.services.payment_events import REFUND_TASK
from app.timeutil import utcnow
from tests.support.api import ADMIN, assert_problem, bearer, create_goods, create_user
from tests.support.processes import wait_until
from tests.support.world import World


def test_overlapping_copies_of_create_payment_keep_the_payment_payable(world: World) -> None:
    """Two sweeps re-drove the step while no worker served its queue; two copies then run at once."""
    order_id, saga_id = world.place(coupon=False)
    world.engine.run_action(saga_id, "reserve_stock")
    for _ in range(2):
        assert world.engine.redrive_stale(timedelta(seconds=-1)) == 1
    with world.db.uow() as uow:
        copies = uow.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.task.like("%create_payment"))
        )
    assert copies == 3
    real_create = world.provider.create_payment
    lock = threading.Lock()

    def slow_create(**kwargs: Any) -> ProviderPayment:
        time.sleep(0.3)  # network latency, so that the two copies overlap
        with lock:
            return real_create(**kwargs)

    world.provider.create_payment = slow_create  # type: ignore[method-assign]
    threads = [
        threading.Thread(target=world.engine.run_action, args=(saga_id, "create_payment")) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.saga(saga_id).status == "AWAITING_PAYMENT"
    assert world.read(Order, order_id).status == "AWAITING_PAYMENT"
    assert [p.status for p in world.provider.payments.values()] == [PaymentStatus.PENDING]


def test_a_payment_made_before_the_cancellation_is_refunded_and_the_order_refunded(world: World) -> None:
    order_id, saga_id = world.place(coupon=False)
    world.engine.run_action(saga_id, "reserve_stock")
    world.engine.run_action(saga_id, "create_payment")
    provider_id, payment = next(iter(world.provider.payments.items()))
    world.provider.payments[provider_id] = dataclasses.replace(payment, status=PaymentStatus.SUCCEEDED)
    orders.cancel_order(world.db.uow, world.engine, order_id, world.user_id)
    world.engine.run_compensation(saga_id, "void_payment")
    world.engine.run_compensation(saga_id, "release_stock")
    with world.db.uow() as uow:
        local = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
    assert local is not None and local.status == "REFUNDED"
    assert world.read(Order, order_id).status == "REFUNDED"
    assert world.provider.payments[provider_id].status == PaymentStatus.REFUNDED


def test_a_refund_still_in_progress_lets_the_cancellation_finish_and_the_refund_task_end_it(
    world: World,
) -> None:
    """A real provider's refund can stay in progress for hours: the cancellation must still
    return stock and coupon at once, with the money recorded as held until the refund is final."""
    order_id, saga_id = world.place(coupon=False)
    world.engine.run_action(saga_id, "reserve_stock")
    world.engine.run_action(saga_id, "create_payment")
    provider_id, payment = next(iter(world.provider.payments.items()))
    world.provider.payments[provider_id] = dataclasses.replace(payment, status=PaymentStatus.SUCCEEDED)
    real_refund = world.provider.refund_payment

    def still_in_progress(provider_payment_id: str) -> ProviderPayment:
        raise ProviderUnavailable("refund in progress")

    world.provider.refund_payment = still_in_progress  # type: ignore[method-assign]
    orders.cancel_order(world.db.uow, world.engine, order_id, world.user_id)
    world.engine.run_compensation(saga_id, "void_payment")
    world.engine.run_compensation(saga_id, "release_stock")
    assert world.read(Order, order_id).status == "CANCELLED"
    assert world.saga(saga_id).status == "COMPENSATED"
    with world.db.uow() as uow:
        local = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
        queued = uow.session.scalars(select(OutboxMessage.task).where(OutboxMessage.task == REFUND_TASK))
        assert local is not None and local.status == "SUCCEEDED" and list(queued) == [REFUND_TASK]
    world.provider.refund_payment = real_refund  # type: ignore[method-assign]
    outcome = payment_events.refund_late_payment(
        world.db.uow, world.engine, Providers([world.provider]), order_id
    )
    assert outcome == "refunded" and world.read(Order, order_id).status == "REFUNDED"
    assert world.provider.payments[provider_id].status == PaymentStatus.REFUNDED


def test_a_cancel_while_confirm_runs_waits_for_it_and_is_refused(world: World) -> None:
    """confirm_order calls nothing outside, so it runs in one transaction that holds the saga's
    lock throughout: a cancel arriving meanwhile waits for that lock, then finds the order
    CONFIRMED. Nothing is left half-done."""
    with world.db.uow() as uow:
        whole = coupons.create_coupon(uow, world.user_id, 10**6, 0, None).id  # nothing left to pay
    placed = orders.place_order(
        world.db.uow, world.engine, orders.NewOrder(world.user_id, [orders.Line(world.goods_id, 1)], whole)
    )
    order_id, saga_id = placed.order.id, placed.order.saga.id  # type: ignore[union-attr]
    world.engine.run_action(saga_id, "reserve_stock")
    world.engine.run_action(saga_id, "lock_coupon")
    real_succeed = world.engine._succeed
    refused: list[Exception] = []

    def cancel() -> None:
        try:
            orders.cancel_order(world.db.uow, world.engine, order_id, world.user_id)
        except Conflict as error:
            refused.append(error)

    canceller = threading.Thread(target=cancel)

    def cancel_meanwhile(*args: Any) -> None:
        canceller.start()
        wait_until(lambda: _waiting_for_a_lock(world) == 1, timeout=10, what="the cancel to wait")
        real_succeed(*args)

    world.engine._succeed = cancel_meanwhile  # type: ignore[method-assign]
    world.engine.run_action(saga_id, "confirm_order")
    world.engine._succeed = real_succeed  # type: ignore[method-assign]
    canceller.join(timeout=10)
    assert len(refused) == 1 and "CONFIRMED" in str(refused[0])
    assert world.saga(saga_id).status == "COMPLETED"
    assert world.read(Order, order_id).status == "CONFIRMED"
    assert world.stock() == (9, 0, 1)


def _waiting_for_a_lock(world: World) -> int:
    with world.db.engine.connect() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


def test_a_cancel_during_the_last_attempt_compensates_rather_than_fails(world: World) -> None:
    order_id, saga_id = world.place()
    world.engine.run_action(saga_id, "reserve_stock")
    world.engine.run_action(saga_id, "lock_coupon")
    real_create = world.provider.create_payment

    def down_and_the_buyer_cancels(**_kwargs: Any) -> Any:
        orders.cancel_order(world.db.uow, world.engine, order_id, world.user_id)
        raise ProviderUnavailable("provider down")

    world.provider.create_payment = down_and_the_buyer_cancels  # type: ignore[method-assign]
    try:
        world.engine.run_action(saga_id, "create_payment")
    except ProviderUnavailable:
        world.engine.mark_failed(saga_id, "create_payment", "action", "ProviderUnavailable: provider down")
    world.provider.create_payment = real_create  # type: ignore[method-assign]
    assert world.saga(saga_id).status == "COMPENSATING"
    for step in ("void_payment", "release_coupon", "release_stock"):
        world.engine.run_compensation(saga_id, step)
    assert world.read(Order, order_id).status == "CANCELLED"
    assert world.read(Coupon, world.coupon_id).status == "AVAILABLE"
    assert world.stock() == (10, 0, 0)


def test_a_stalled_request_whose_key_was_taken_over_makes_no_second_order(world: World) -> None:
    real_start = world.engine.start
    took_over = False

    def stall_then_retry(uow: Any, saga_type: str, order_id: str) -> Any:
        nonlocal took_over
        saga = real_start(uow, saga_type, order_id)
        if not took_over:
            took_over = True
            with world.db.uow() as other:  # the first request has been stuck past the abandon limit
                other.session.execute(
                    update(IdempotencyKey).values(created_at=utcnow() - timedelta(seconds=61))
                )
                other.commit()
            orders.place_order(
                world.db.uow,
                world.engine,
                orders.NewOrder(world.user_id, [orders.Line(world.goods_id, 1)]),
                idempotency=orders.Idempotency("k", "h"),
            )
        return saga

    world.engine.start = stall_then_retry  # type: ignore[method-assign]
    try:
        orders.place_order(
            world.db.uow,
            world.engine,
            orders.NewOrder(world.user_id, [orders.Line(world.goods_id, 1)]),
            idempotency=orders.Idempotency("k", "h"),
        )
    except Exception as error:  # noqa: BLE001 - the stalled request loses; asserted below
        assert getattr(error, "code", None) == "conflict"
    world.engine.start = real_start  # type: ignore[method-assign]
    with world.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Order)) == 1
        key = uow.session.get(IdempotencyKey, (world.user_id, "k"))
        assert key is not None and key.order_id is not None


def test_totals_beyond_the_money_bound_and_lone_surrogates_are_422(client: FlaskClient) -> None:
    buyer = create_user(client)
    gold = client.post(
        "/api/v1/goods",
        json={"sku": "gold", "name": "Gold", "price_cents": 10**12, "stock": 5},
        headers=ADMIN,
    ).get_json()
    too_much = client.post(
        "/api/v1/orders",
        json={"items": [{"goods_id": gold["id"], "quantity": 2}]},
        headers=bearer(buyer["token"]),
    )
    assert_problem(too_much, 422, "validation", "items")
    goods = create_goods(client)
    for body in (
        b'{"items": [{"goods_id": "\\ud800", "quantity": 1}]}',
        b'{"items": [{"goods_id": "%s", "quantity": 1}], "coupon_id": "\\ud800"}' % goods["id"].encode(),
    ):
        response = client.post(
            "/api/v1/orders", data=body, content_type="application/json", headers=bearer(buyer["token"])
        )
        assert response.status_code == 422, response.get_data(as_text=True)
