"""Orders: placing one (and only one per idempotency key), reading, cancelling, and the changes
of status that the order saga makes.

Placing an order only records it: the order, its lines at frozen prices, its saga and the first
saga message commit in one transaction; stock and coupon are the saga's to decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.bounds import MAX_CENTS
from app.db import UnitOfWork
from app.errors import Conflict, IdempotencyKeyReuse, InvalidInput, NotFound
from app.ids import looks_like_id, new_id
from app.models import payments as payment_status
from app.models.coupons import Coupon
from app.models.goods import Goods
from app.models.orders import (
    AWAITING_PAYMENT,
    CANCELLED,
    CANCELLING,
    CONFIRMED,
    ORDER_ITEMS,
    ORDERS,
    PAID,
    PENDING,
    REFUNDED,
    IdempotencyKey,
    Order,
    OrderItem,
)
from app.models.payments import Payment
from app.services.lookup import find, order_row
from app.timeutil import utcnow
from sagas.engine import SagaEngine
from sagas.models import Saga

ORDER_SAGA = "order"
# A key whose first request died before finishing may be taken over after this long.
ABANDONED_KEY_AFTER = timedelta(seconds=60)

# An order on the wire shows its saga's id and status, not the saga's steps: loading those with
# every order read would be a query more for nothing (they still load if touched).
AS_SHOWN = (selectinload(Order.saga).lazyload(Saga.steps),)
GOODS: Table = Goods.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Line:
    goods_id: str
    quantity: int


@dataclass(frozen=True)
class NewOrder:
    """What a buyer asks for. `payment_provider` is one of the enabled providers (checked by
    `payment_provider_for`); None leaves the deployment's default to the payment step."""

    user_id: str
    lines: list[Line]
    coupon_id: str | None = None
    payment_provider: str | None = None


@dataclass(frozen=True)
class Placed:
    order: Order
    replayed: bool


@dataclass(frozen=True)
class Idempotency:
    """A request's Idempotency-Key, and the hash of its body that a replay must match."""

    key: str
    request_hash: str


def payment_provider_for(requested: str | None, enabled: tuple[str, ...]) -> str:
    """The provider an order will pay through: the one asked for, if enabled, else the default."""
    if requested is None:
        return enabled[0]
    if requested not in enabled:
        raise InvalidInput("payment_provider", f"Must be one of: {', '.join(enabled)}.")
    return requested


def place_order(
    new_uow: Callable[[], UnitOfWork],
    engine: SagaEngine,
    new: NewOrder,
    *,
    idempotency: Idempotency | None = None,
) -> Placed:
    user_id = new.user_id
    claimed_at = None
    if idempotency is not None:
        existing, claimed_at = _claim_key(new_uow, user_id, idempotency.key, idempotency.request_hash)
        if existing is not None:
            with new_uow() as uow:
                return Placed(get_order(uow, existing), replayed=True)
    try:
        with new_uow() as uow:
            order = _new_order(uow, new)
            saga = engine.start(uow, ORDER_SAGA, order.id)
            if idempotency is not None:
                done = uow.session.execute(
                    update(IdempotencyKey)
                    .where(*_still_ours(user_id, idempotency.key, claimed_at))
                    .values(order_id=order.id)
                )
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    # We stalled so long that another request took the key over: it owns the order.
                    raise Conflict("This Idempotency-Key was taken over by a newer request.")
            # The answer shows the rows as inserted: nothing needs reading back.
            set_committed_value(order, "payment", None)
            set_committed_value(order, "saga", saga)
            uow.commit()
    except BaseException:
        if idempotency is not None:
            _release_key(new_uow, user_id, idempotency.key, claimed_at)
        raise
    return Placed(order, replayed=False)


def _new_order(uow: UnitOfWork, new: NewOrder) -> Order:
    user_id, lines, coupon_id = new.user_id, new.lines, new.coupon_id
    wanted = {line.goods_id for line in lines}
    prices: dict[str, int] = dict(
        uow.connection.execute(select(GOODS.c.id, GOODS.c.price_cents).where(GOODS.c.id.in_(wanted))).all()
    )
    for index, line in enumerate(lines):
        if line.goods_id not in prices:
            raise InvalidInput(f"items.{index}.goods_id", f"Unknown goods {line.goods_id!r}.")
    discount_cap = 0
    if coupon_id is not None:
        coupon = find(uow.session, Coupon, coupon_id)
        if coupon is None or coupon.user_id != user_id:
            raise InvalidInput("coupon_id", "No such coupon of yours.")
        discount_cap = coupon.amount_off_cents
    total = sum(prices[line.goods_id] * line.quantity for line in lines)
    if total > MAX_CENTS:
        raise InvalidInput("items", f"The order's total may be at most {MAX_CENTS} cents.")
    discount = min(discount_cap, total)
    row, items = insert_new_order(uow, new, prices, discount_cents=discount)
    # The order returned is the answer's, not in the session: what the saga reads of it in
    # this transaction, it reads from these rows.
    order = Order(**row)
    order.items = [OrderItem(**item) for item in items]
    return order


def insert_new_order(
    uow: UnitOfWork,
    new: NewOrder,
    prices: dict[str, int],
    *,
    discount_cents: int = 0,
    flash_sale_id: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Insert a new PENDING order and its lines at `prices` (cents by goods id); returns their
    rows. Used for an everyday order and a flash sale's winner alike.

    Plain INSERTs, not the ORM's flush, which costs more than the statements on both hot paths
    (docs/benchmarks.md)."""
    now = utcnow()
    total = sum(prices[line.goods_id] * line.quantity for line in new.lines)
    row = {
        "id": new_id("ord"),
        "user_id": new.user_id,
        "status": PENDING,
        "total_cents": total,
        "discount_cents": discount_cents,
        "payable_cents": total - discount_cents,
        "coupon_id": new.coupon_id,
        "flash_sale_id": flash_sale_id,
        "cancel_reason": None,
        "payment_deadline": None,
        "payment_provider": new.payment_provider,
        "timeout_queued_at": None,
        "points_credited": False,
        "created_at": now,
        "updated_at": now,
    }
    items = [
        {
            "order_id": row["id"],
            "position": position,
            "goods_id": line.goods_id,
            "quantity": line.quantity,
            "unit_price_cents": prices[line.goods_id],
        }
        for position, line in enumerate(new.lines)
    ]
    uow.connection.execute(insert(ORDERS), row)
    uow.connection.execute(insert(ORDER_ITEMS), items)
    return row, items


def _still_ours(user_id: str, key: str, claimed_at: datetime | None) -> list[Any]:
    return [
        IdempotencyKey.user_id == user_id,
        IdempotencyKey.key == key,
        IdempotencyKey.order_id.is_(None),
        IdempotencyKey.created_at == claimed_at,
    ]


def _claim_key(
    new_uow: Callable[[], UnitOfWork], user_id: str, key: str, request_hash: str
) -> tuple[str | None, datetime | None]:
    """Insert the key first and let the primary key decide races (never check-then-insert).

    Returns (order id to replay, None), or (None, the claim's time) when this request now owns
    the key: completing or releasing the key later is conditional on that claim still standing.
    """
    claimed_at = utcnow()
    with new_uow() as uow:
        uow.session.add(
            IdempotencyKey(user_id=user_id, key=key, request_hash=request_hash, created_at=claimed_at)
        )
        try:
            uow.commit()
            return None, claimed_at
        except IntegrityError:
            uow.rollback()
        row = uow.session.get(IdempotencyKey, (user_id, key))
        if row is None:  # released by a failed first request just now: try once more
            raise Conflict("A request with this Idempotency-Key is being processed; retry shortly.")
        if row.request_hash != request_hash:
            raise IdempotencyKeyReuse("This Idempotency-Key was used with a different request body.")
        if row.order_id is not None:
            return row.order_id, None
        if row.created_at > utcnow() - ABANDONED_KEY_AFTER:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        taken = uow.session.execute(
            update(IdempotencyKey)
            .where(*_still_ours(user_id, key, row.created_at))
            .values(created_at=claimed_at)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        uow.commit()
        return None, claimed_at


def _release_key(
    new_uow: Callable[[], UnitOfWork], user_id: str, key: str, claimed_at: datetime | None
) -> None:
    """The request failed (bad input, say): free the key so a corrected request may use it,
    unless a newer request has taken it over meanwhile."""
    with new_uow() as uow:
        uow.session.execute(delete(IdempotencyKey).where(*_still_ours(user_id, key, claimed_at)))
        uow.commit()


def get_order(uow: UnitOfWork, order_id: str, owner_id: str | None = None) -> Order:
    """`owner_id` set: someone else's order is reported as missing, never as forbidden."""
    order = uow.session.get(Order, order_id, options=AS_SHOWN) if looks_like_id(order_id) else None
    if order is None or (owner_id is not None and order.user_id != owner_id):
        raise NotFound(f"No order {order_id!r}.")
    return order


def cancel_order(
    new_uow: Callable[[], UnitOfWork], engine: SagaEngine, order_id: str, owner_id: str
) -> tuple[Order, bool]:
    """The buyer cancels. Returns the order and whether this call changed anything.

    Locks are taken saga first, then order, as everywhere else, so a cancel and a running step
    wait for each other instead of deadlocking.
    """
    with new_uow() as uow:
        order = get_order(uow, order_id, owner_id)
        if order.status in (CANCELLED, REFUNDED, CANCELLING):
            return order, False
        if order.status in (PAID, CONFIRMED):
            raise Conflict(f"Order {order_id} is {order.status} and can no longer be cancelled.")
        assert order.saga is not None
        engine.abort(uow, order.saga.id, "user_cancelled")
        locked = uow.session.get(Order, order_id, with_for_update=True, populate_existing=True)
        assert locked is not None
        if locked.status in (PAID, CONFIRMED):  # paid in the meantime; the rollback undoes the abort
            raise Conflict(f"Order {order_id} is {locked.status} and can no longer be cancelled.")
        if locked.status in (PENDING, AWAITING_PAYMENT):
            locked.status = CANCELLING
            locked.cancel_reason = locked.cancel_reason or "user_cancelled"
            locked.updated_at = utcnow()
        uow.commit()
    with new_uow() as uow:
        return get_order(uow, order_id), True


# -- status changes made by the order saga ---------------------------------------------------


def enter_awaiting_payment(uow: UnitOfWork, order_id: str, payment_timeout: timedelta) -> None:
    now = utcnow()
    uow.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == PENDING)
        .values(status=AWAITING_PAYMENT, payment_deadline=now + payment_timeout, updated_at=now)
        .execution_options(synchronize_session="evaluate")
    )


def start_cancelling(uow: UnitOfWork, order_id: str, reason: str) -> None:
    """The first reason wins: a later one (a step failing after the user cancelled) is not it."""
    order = order_row(uow.session, order_id, lock=True)
    assert order is not None
    if order.status in (PENDING, AWAITING_PAYMENT, CANCELLING):
        order.status = CANCELLING
        order.cancel_reason = order.cancel_reason or reason
        order.updated_at = utcnow()


def finish_cancelling(uow: UnitOfWork, order_id: str) -> None:
    """CANCELLED only now that stock, coupon and payment are all returned; REFUNDED if the
    cancellation found the payment already made and refunded it."""
    refunded = uow.session.scalar(
        select(Payment.id).where(Payment.order_id == order_id, Payment.status == payment_status.REFUNDED)
    )
    uow.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == CANCELLING)
        .values(status=REFUNDED if refunded else CANCELLED, updated_at=utcnow())
        .execution_options(synchronize_session="evaluate")
    )


def confirm(uow: UnitOfWork, order_id: str) -> Order:
    """PAID (or a PENDING order with nothing to pay) becomes CONFIRMED."""
    order = order_row(uow.session, order_id, lock=True)
    assert order is not None
    if not (order.status == PAID or (order.status == PENDING and order.payable_cents == 0)):
        raise RuntimeError(f"order {order_id} is {order.status}; it cannot be confirmed")
    order.status = CONFIRMED
    order.updated_at = utcnow()
    return order
