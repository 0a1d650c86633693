"""The engine's exactly-once guarantees, driven step by step in-process on PostgreSQL.

A fake provider stands in for the network; everything else (services, engine, database) is real.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.models.coupons import Coupon
from app.models.orders import Order
from app.models.payments import Payment
from app.models.users import User
from app.payments.port import PaymentStatus, ProviderPayment, ProviderUnavailable
from app.services import inventory, orders
from app.timeutil import utcnow
from sagas.models import Saga
from tests.support.world import World


def test_each_action_twice_has_the_effect_of_once(world: World) -> None:
    _, saga_id = world.place()
    for step in ("reserve_stock", "reserve_stock"):
        world.engine.run_action(saga_id, step)
    assert world.stock() == (8, 2, 0)
    world.engine.run_action(saga_id, "lock_coupon")
    world.engine.run_action(saga_id, "lock_coupon")
    assert world.read(Coupon, world.coupon_id).status == "LOCKED"
    world.engine.run_action(saga_id, "create_payment")
    world.engine.run_action(saga_id, "create_payment")
    assert [c for c in world.provider.calls if c.startswith("create")] == [world.provider.calls[0]]
    assert len(world.provider.payments) == 1
    saga = world.saga(saga_id)
    assert saga.status == "AWAITING_PAYMENT"
    assert [s.attempts for s in saga.steps if s.kind == "action"][:3] == [1, 1, 1]
    assert world.stock() == (8, 2, 0)


def test_each_compensation_twice_has_the_effect_of_once(world: World) -> None:
    order_id, saga_id = world.place()
    for step in ("reserve_stock", "lock_coupon", "create_payment"):
        world.engine.run_action(saga_id, step)
    world.abort(saga_id)
    assert world.read(Order, order_id).status == "CANCELLING"
    for step in (
        "void_payment",
        "void_payment",
        "release_coupon",
        "release_coupon",
        "release_stock",
        "release_stock",
    ):
        world.engine.run_compensation(saga_id, step)
    assert [c.split()[0] for c in world.provider.calls].count("void") == 1
    assert world.stock() == (10, 0, 0)
    assert world.read(Coupon, world.coupon_id).status == "AVAILABLE"
    order = world.read(Order, order_id)
    assert (order.status, order.cancel_reason) == ("CANCELLED", "user_cancelled")
    assert world.saga(saga_id).status == "COMPENSATED"
    with world.db.uow() as uow:
        payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
        assert payment is not None and payment.status == "VOIDED"
    assert next(iter(world.provider.payments.values())).status == PaymentStatus.VOIDED


def test_a_compensation_for_an_action_that_never_ran_does_nothing(world: World) -> None:
    order_id, saga_id = world.place()
    world.abort(saga_id)  # cancelled before its first step ran
    world.engine.run_action(saga_id, "reserve_stock")  # the first step's message arrives late
    assert world.stock() == (10, 0, 0)
    saga = world.saga(saga_id)
    assert saga.status == "COMPENSATED"
    assert {s.status for s in saga.steps} == {"SKIPPED"}
    assert world.read(Order, order_id).status == "CANCELLED"


def test_an_action_whose_compensation_ran_never_applies_afterwards(world: World) -> None:
    """A hanging action: the step's message is redelivered after the saga was compensated."""
    _, saga_id = world.place()
    world.engine.run_action(saga_id, "reserve_stock")
    world.abort(saga_id)
    world.engine.run_action(saga_id, "lock_coupon")  # sees the cancellation: compensates instead
    world.engine.run_compensation(saga_id, "release_stock")
    assert world.saga(saga_id).status == "COMPENSATED"
    for step in ("reserve_stock", "lock_coupon", "create_payment"):  # every late duplicate
        world.engine.run_action(saga_id, step)
    assert world.stock() == (10, 0, 0)
    assert world.read(Coupon, world.coupon_id).status == "AVAILABLE"
    assert world.provider.calls == []


def test_a_lost_provider_answer_is_still_voided(world: World) -> None:
    """create_payment reached the provider but the answer was lost; the void still finds it."""
    _, saga_id = world.place()
    world.engine.run_action(saga_id, "reserve_stock")
    world.engine.run_action(saga_id, "lock_coupon")
    real_create = world.provider.create_payment

    def create_then_lose_answer(**kwargs: Any) -> ProviderPayment:
        real_create(**kwargs)
        raise ProviderUnavailable("connection reset after the provider created it")

    world.provider.create_payment = create_then_lose_answer  # type: ignore[method-assign]
    with pytest.raises(ProviderUnavailable):
        world.engine.run_action(saga_id, "create_payment")
    world.provider.create_payment = real_create  # type: ignore[method-assign]
    world.abort(saga_id)  # the saga is RUNNING: the request is honoured at its next step
    world.engine.run_action(saga_id, "create_payment")  # the retry sees the cancellation
    for step in ("void_payment", "release_coupon", "release_stock"):
        world.engine.run_compensation(saga_id, step)
    assert [p.status for p in world.provider.payments.values()] == [PaymentStatus.VOIDED]
    assert world.saga(saga_id).status == "COMPENSATED"
    assert world.stock() == (10, 0, 0)


def test_a_cancellation_during_the_provider_call_voids_the_new_payment(world: World) -> None:
    _, saga_id = world.place(coupon=False)
    world.engine.run_action(saga_id, "reserve_stock")
    real_create = world.provider.create_payment

    def cancel_meanwhile(**kwargs: Any) -> ProviderPayment:
        created = real_create(**kwargs)
        world.abort(saga_id)
        world.engine.run_action(saga_id, "create_payment")  # the cancelled saga starts compensating
        return created

    world.provider.create_payment = cancel_meanwhile  # type: ignore[method-assign]
    world.engine.run_action(saga_id, "create_payment")
    assert [p.status for p in world.provider.payments.values()] == [PaymentStatus.VOIDED]
    world.provider.create_payment = real_create  # type: ignore[method-assign]
    for step in ("void_payment", "release_stock"):
        world.engine.run_compensation(saga_id, step)
    assert world.saga(saga_id).status == "COMPENSATED"
    assert world.stock() == (10, 0, 0)


def test_points_are_credited_once(world: World) -> None:
    from app.services import members

    order_id, _ = world.place(quantity=3, coupon=False)
    with world.db.uow() as uow:
        uow.session.get(Order, order_id).status = "PAID"  # type: ignore[union-attr]
        uow.commit()
    with world.db.uow() as uow:
        assert members.credit_points(uow, order_id) == 0  # not confirmed yet
    with world.db.uow() as uow:
        orders.confirm(uow, order_id)
        uow.commit()
    for expected in (30, 0):
        with world.db.uow() as uow:
            assert members.credit_points(uow, order_id) == expected
    assert world.read(User, world.user_id).points == 30
    with world.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Order)) == 1


def test_a_local_step_that_fails_is_recorded_as_started_and_fails_after_its_retries(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that calls nothing outside runs in one transaction; when it raises, that
    transaction rolls back, yet its attempt and error are kept, as for every other step."""
    _, saga_id = world.place()

    def unreachable(*_args: Any) -> None:
        raise ConnectionError("inventory database unreachable")

    monkeypatch.setattr(inventory, "reserve", unreachable)
    for attempt in (1, 2):
        with pytest.raises(ConnectionError):
            world.engine.run_action(saga_id, "reserve_stock")
        world.engine.note_failed_attempt(saga_id, "reserve_stock", "action", "ConnectionError: unreachable")
        step = world.saga(saga_id).step("reserve_stock", "action")
        assert step is not None
        assert (step.status, step.attempts) == ("RUNNING", attempt)
        assert step.error == "ConnectionError: unreachable"
    world.engine.mark_failed(saga_id, "reserve_stock", "action", "ConnectionError: unreachable")
    saga = world.saga(saga_id)
    assert (saga.status, saga.failed_kind) == ("FAILED", "action")
    assert world.stock() == (10, 0, 0)


def test_a_local_step_that_says_no_is_recorded_as_tried_and_compensates(world: World) -> None:
    order_id, saga_id = world.place(quantity=11)  # more than the 10 in stock
    world.engine.run_action(saga_id, "reserve_stock")
    saga = world.saga(saga_id)
    step = saga.step("reserve_stock", "action")
    assert step is not None
    assert (step.status, step.attempts, step.error) == ("FAILED", 1, "insufficient_stock")
    assert saga.status == "COMPENSATING"
    assert world.read(Order, order_id).status == "CANCELLING"
    assert world.stock() == (10, 0, 0)


def test_the_sweep_counts_a_paced_saga_stale_only_from_its_start_time(world: World) -> None:
    """A flash-sale winner's saga may wait minutes for its turn: re-driving it earlier would
    undo the pace (and send its first step twice)."""
    _, saga_id = world.place(coupon=False)
    with world.db.uow() as uow:
        saga = uow.session.get(Saga, saga_id)
        assert saga is not None
        saga.not_before = utcnow() + timedelta(minutes=5)
        uow.commit()
    # With a stale limit of zero, a saga that has not moved since before now is stale...
    assert world.engine.redrive_stale(timedelta(0)) == 0  # ...unless its turn has not come yet
    with world.db.uow() as uow:
        past = utcnow() - timedelta(seconds=1)
        uow.session.execute(update(Saga).where(Saga.id == saga_id).values(not_before=past))
        uow.commit()
    assert world.engine.redrive_stale(timedelta(0)) == 1
