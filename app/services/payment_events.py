"""What the provider tells us about a payment, and what the clock does: webhooks, the payment
timeout, and refunds of money that arrived for an order already cancelled.

Every change holds the saga's lock first, then the order's: a success webhook, a timeout and a
buyer's cancel racing each other are serialized, and whichever commits first decides. The loser
sees the new state: a success that lost to a cancellation is refunded, so each order ends in
exactly one of CONFIRMED or REFUNDED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app import outbox
from app.backoff import due_again
from app.db import UnitOfWork
from app.errors import AmountMismatch, NotFound
from app.models import payments as payment_status
from app.models.orders import AWAITING_PAYMENT, CANCELLED, PAID, REFUNDED, Order
from app.models.payments import Payment
from app.models.webhooks import WebhookEvent
from app.payments import Providers
from app.payments.port import PaymentStatus, ProviderRejected
from app.services.lookup import order_row
from app.timeutil import utcnow
from sagas.engine import SagaEngine
from sagas.models import Saga

AWAIT_STEP = "await_payment"
QUEUE = "payments"  # refunds' and timeouts'
REFUND_TASK = "payments.refund_late_payment"
TIMEOUT_TASK = "payments.payment_timeout"
MIN_TIMEOUT_HORIZON = timedelta(seconds=60)

SUCCEEDED = "payment.succeeded"
FAILED = "payment.failed"
REFUND_SUCCEEDED = "refund.succeeded"
EVENT_TYPES = (SUCCEEDED, FAILED, REFUND_SUCCEEDED)


@dataclass(frozen=True)
class WebhookEventIn:
    """A verified notification. The payment is found by the shop's own id where the provider
    echoes it (`payment_id`), else by the provider's (`provider_payment_id`)."""

    provider: str
    event_id: str
    type: str
    provider_payment_id: str | None
    amount_cents: int | None
    currency: str | None
    payment_id: str | None = None


def handle_webhook(new_uow: Callable[[], UnitOfWork], engine: SagaEngine, event: WebhookEventIn) -> str:
    """Apply a verified webhook event once. Returns "processed" or "duplicate"."""
    with new_uow() as uow:
        payment = _payment_of(uow, event)
        if (payment.amount_cents, payment.currency) != (event.amount_cents, event.currency):
            raise AmountMismatch(
                f"The event says {event.amount_cents} {event.currency}; the payment is "
                f"{payment.amount_cents} {payment.currency}."
            )
        saga = _saga_of(uow, engine, payment.order_id)
        uow.session.add(
            WebhookEvent(
                provider=event.provider,
                id=event.event_id,
                type=event.type,
                provider_payment_id=payment.provider_payment_id or payment.id,
            )
        )
        try:
            uow.session.flush()
        except IntegrityError:
            return "duplicate"  # the rollback on leaving the block undoes nothing else
        locked = uow.session.get(Payment, payment.id, with_for_update=True, populate_existing=True)
        assert locked is not None
        if event.type == SUCCEEDED:
            _payment_succeeded(uow, engine, saga, locked)
        elif event.type == FAILED:
            _payment_failed(uow, engine, saga, locked, "payment_failed")
        else:
            _refund_succeeded(uow, locked)
        uow.commit()
    return "processed"


def _payment_of(uow: UnitOfWork, event: WebhookEventIn) -> Payment:
    """The payment an event is about; a payment of another provider is not it."""
    if event.payment_id is not None:
        where = Payment.id == event.payment_id
    elif event.provider_payment_id is not None:
        where = Payment.provider_payment_id == event.provider_payment_id
    else:
        raise NotFound("The event names no payment.")
    payment = uow.session.scalar(select(Payment).where(where, Payment.provider == event.provider))
    if payment is None:
        raise NotFound(f"No payment {event.payment_id or event.provider_payment_id!r} at {event.provider}.")
    return payment


def _saga_of(uow: UnitOfWork, engine: SagaEngine, order_id: str) -> Saga:
    return engine.lock_subject(uow, order_id)


def _lock_order(uow: UnitOfWork, order_id: str) -> Order:
    order = order_row(uow.session, order_id, lock=True)
    assert order is not None
    return order


def _payment_succeeded(uow: UnitOfWork, engine: SagaEngine, saga: Saga, payment: Payment) -> str:
    order = _lock_order(uow, payment.order_id)
    if payment.status in (payment_status.PENDING, payment_status.VOIDED, payment_status.FAILED):
        payment.status = payment_status.SUCCEEDED
        payment.updated_at = utcnow()
    if order.status == AWAITING_PAYMENT and engine.waiting_at(saga, AWAIT_STEP):
        order.status = PAID
        order.updated_at = utcnow()
        engine.resume(uow, saga.id, AWAIT_STEP)  # queues confirm_order
        return "paid"
    if order.status == CANCELLED and payment.status == payment_status.SUCCEEDED:
        # Money for an order already cancelled (and compensated): give it back.
        outbox.add(uow, REFUND_TASK, {"order_id": order.id}, QUEUE)
        return "refunding"
    # CANCELLING: the running compensation's void finds the payment paid and refunds it.
    return "ignored"


def _payment_failed(uow: UnitOfWork, engine: SagaEngine, saga: Saga, payment: Payment, reason: str) -> None:
    order = _lock_order(uow, payment.order_id)
    if payment.status == payment_status.PENDING:
        payment.status = payment_status.FAILED
        payment.updated_at = utcnow()
    if order.status == AWAITING_PAYMENT and engine.waiting_at(saga, AWAIT_STEP):
        engine.abort(uow, saga.id, reason)


def _refund_succeeded(uow: UnitOfWork, payment: Payment) -> None:
    order = _lock_order(uow, payment.order_id)
    payment.status = payment_status.REFUNDED
    payment.updated_at = utcnow()
    if order.status == CANCELLED:
        order.status = REFUNDED
        order.updated_at = utcnow()


# -- the payment timeout ---------------------------------------------------------------------


def timeout_horizon(sweep_interval: timedelta) -> timedelta:
    """How near its deadline an order's timeout becomes an ETA task. The broker hands an ETA task
    to a worker at once, which holds it in memory until it is due: with every deadline queued
    at once, 100 orders a second awaiting payment for 15 minutes would be 90,000 tasks in one
    worker. Queued only this near (two sweeps at least, so that one missed sweep still queues
    it in time), a worker holds the next minute or two of deadlines, and the ETA task still
    fires on time."""
    return max(2 * sweep_interval, MIN_TIMEOUT_HORIZON)


def schedule_timeout(uow: UnitOfWork, saga_id: str, order_id: str, horizon: timedelta) -> None:
    """An ETA task at the deadline if it is within `horizon`; otherwise the sweep queues it
    when it is (`queue_near_timeouts`). The sweep is the backstop if the broker loses it."""
    order = order_row(uow.session, order_id)
    assert order is not None and order.payment_deadline is not None
    if order.payment_deadline <= utcnow() + horizon:
        _queue_timeout(uow, saga_id, order_id, order.payment_deadline)


def _queue_timeout(
    uow: UnitOfWork,
    saga_id: str,
    order_id: str,
    eta: datetime | None,
    *,
    now: datetime | None = None,
    requeue: bool = False,
) -> None:
    """`requeue`: the backstop's, past the deadline, which backs off (app.backoff)."""
    outbox.add(uow, TIMEOUT_TASK, {"saga_id": saga_id, "order_id": order_id}, QUEUE, eta=eta)
    values: dict[str, Any] = {"timeout_queued_at": now or utcnow()}
    if requeue:
        values["timeout_requeues"] = Order.timeout_requeues + 1
    uow.session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def queue_near_timeouts(uow: UnitOfWork, horizon: timedelta, limit: int = 5000) -> int:
    """Queue the ETA task of every order awaiting payment whose deadline came within `horizon`
    and whose task is not queued yet; the earliest first.

    The orders are locked as they are read, skipping those another transaction holds: two
    sweeps at once (beat's next one while a slow one is still queuing) split the orders between
    them instead of both queuing every one, which would have the worker hold each ETA task twice.
    An order a webhook or a timeout holds is left to the next sweep."""
    rows = uow.session.execute(
        select(Saga.id, Order.id, Order.payment_deadline)
        .join(Saga, Saga.subject_id == Order.id)
        .where(
            Order.status == AWAITING_PAYMENT,
            Order.timeout_queued_at.is_(None),
            Order.payment_deadline <= utcnow() + horizon,
        )
        .order_by(Order.payment_deadline)
        .limit(limit)
        .with_for_update(of=Order, skip_locked=True)
    ).all()
    for saga_id, order_id, deadline in rows:
        assert deadline is not None  # set on entering AWAITING_PAYMENT
        _queue_timeout(uow, saga_id, order_id, deadline)
    uow.commit()
    return len(rows)


def expire_payment(
    new_uow: Callable[[], UnitOfWork], engine: SagaEngine, providers: Providers, order_id: str
) -> str:
    """At the deadline: ask the provider first (a success whose webhook was lost confirms the
    order); otherwise cancel with `payment_timeout`. Returns what happened."""
    with new_uow() as uow:
        order = order_row(uow.session, order_id)
        if order is None or order.status != AWAITING_PAYMENT:
            return "moved-on"
        if order.payment_deadline is None or order.payment_deadline > utcnow():
            return "not-due"
        payment = order.payment
        provider_id = payment.provider_payment_id if payment else None
        provider = providers[payment.provider] if payment else None
    at_provider = provider.get_payment(provider_id).status if provider and provider_id else None
    with new_uow() as uow:
        saga = _saga_of(uow, engine, order_id)
        payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id).with_for_update())
        order = _lock_order(uow, order_id)
        if order.status != AWAITING_PAYMENT or not engine.waiting_at(saga, AWAIT_STEP) or payment is None:
            return "moved-on"
        if at_provider == PaymentStatus.SUCCEEDED:
            outcome = _payment_succeeded(uow, engine, saga, payment)
        elif at_provider == PaymentStatus.FAILED:
            _payment_failed(uow, engine, saga, payment, "payment_failed")
            outcome = "failed"
        else:
            engine.abort(uow, saga.id, "payment_timeout")
            outcome = "timed-out"
        uow.commit()
        return outcome


def queue_overdue_timeouts(
    uow: UnitOfWork, retry_after: timedelta, overdue_by: timedelta = timedelta(0), limit: int = 5000
) -> int:
    """The backstop for a lost ETA task: queue the timeout, due now, of every order still
    awaiting payment `overdue_by` past its deadline; the earliest first.

    An order is queued again only if its task was queued before the deadline (the ETA task,
    which should have run by now) or longer than `retry_after` ago. A worker that is behind on
    due timeouts is so handed each overdue order once, not once more every sweep while it
    catches up. Locked as read, skipping what another transaction holds, as for
    `queue_near_timeouts`."""
    now = utcnow()
    rows = uow.session.execute(
        select(Saga.id, Order.id)
        .join(Saga, Saga.subject_id == Order.id)
        .where(
            Order.status == AWAITING_PAYMENT,
            Order.payment_deadline <= now - overdue_by,
            or_(
                Order.timeout_queued_at.is_(None),
                Order.timeout_queued_at <= Order.payment_deadline,
                due_again(Order.timeout_requeues, Order.timeout_queued_at, now, retry_after),
            ),
        )
        .order_by(Order.payment_deadline)
        .limit(limit)
        .with_for_update(of=Order, skip_locked=True)
    ).all()
    for saga_id, order_id in rows:
        _queue_timeout(uow, saga_id, order_id, eta=None, now=now, requeue=True)
    uow.commit()
    return len(rows)


# -- late money -------------------------------------------------------------------------------


def queue_unfinished_refunds(uow: UnitOfWork, older_than: timedelta, limit: int = 200) -> int:
    """Queue the refund again for money still held for a cancelled order, `older_than` after the
    payment last moved: the backstop for a refund whose task ran out of retries (a real
    provider's refund can stay in progress for hours) or was lost with the broker. Queuing
    touches the payment, so each waits `older_than` again before its next turn."""
    now = utcnow()
    order_ids = list(
        uow.session.scalars(
            select(Order.id)
            .join(Payment, Payment.order_id == Order.id)
            .where(
                Order.status == CANCELLED,
                Payment.status == payment_status.SUCCEEDED,
                Payment.updated_at <= now - older_than,
            )
            .order_by(Payment.updated_at)
            .limit(limit)
        )
    )
    for order_id in order_ids:
        outbox.add(uow, REFUND_TASK, {"order_id": order_id}, QUEUE)
    if order_ids:
        uow.session.execute(update(Payment).where(Payment.order_id.in_(order_ids)).values(updated_at=now))
    uow.commit()
    return len(order_ids)


def refund_late_payment(
    new_uow: Callable[[], UnitOfWork], engine: SagaEngine, providers: Providers, order_id: str
) -> str:
    """Refund a payment that succeeded for an order already cancelled; the order becomes REFUNDED."""
    with new_uow() as uow:
        payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
        if (
            payment is None
            or payment.status != payment_status.SUCCEEDED
            or payment.provider_payment_id is None
        ):
            return "nothing-to-refund"
        provider_id, provider = payment.provider_payment_id, providers[payment.provider]
    try:
        provider.refund_payment(provider_id)
    except ProviderRejected as rejected:
        if rejected.status_now != PaymentStatus.REFUNDED:
            raise
    with new_uow() as uow:
        _saga_of(uow, engine, order_id)  # saga first, like every other writer of this order
        payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id).with_for_update())
        assert payment is not None
        _refund_succeeded(uow, payment)
        uow.commit()
    return "refunded"
