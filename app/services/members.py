"""Points: a confirmed order earns its buyer `payable_cents // 100` points, exactly once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app import outbox
from app.backoff import due_again
from app.db import UnitOfWork
from app.models.orders import CONFIRMED, Order
from app.models.users import User
from app.timeutil import utcnow

CREDIT_POINTS_TASK = "members.credit_points"
QUEUE = "members"


def queue_credit(uow: UnitOfWork, order_id: str) -> None:
    """Points go through the members queue: an order confirms even while no worker serves it."""
    outbox.add(uow, CREDIT_POINTS_TASK, {"order_id": order_id}, QUEUE)


def credit_points(uow: UnitOfWork, order_id: str) -> int:
    """Credit the order's points unless already credited; returns the points added now."""
    claimed = uow.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == CONFIRMED, Order.points_credited.is_(False))
        .values(points_credited=True)
        .returning(Order.user_id, Order.payable_cents)
    ).first()
    if claimed is None:
        return 0
    points = int(claimed.payable_cents) // 100
    uow.session.execute(
        update(User)
        .where(User.id == claimed.user_id)
        .values(points=User.points + points)
        .execution_options(synchronize_session=False)
    )
    uow.commit()
    return points


def queue_uncredited(uow: UnitOfWork, older_than: timedelta, limit: int = 200) -> int:
    """The sweep's backstop for a credit the broker lost (a Redis without persistence that
    restarted): queue it again for orders confirmed longer than `older_than` ago and still not
    credited, then again after twice as long, and so on (app.backoff, counted from the
    confirmation). Crediting is idempotent, so a duplicate does nothing."""
    now = utcnow()
    order_ids = uow.session.scalars(
        select(Order.id)
        .where(
            Order.status == CONFIRMED,
            Order.points_credited.is_(False),
            due_again(Order.points_requeues, Order.updated_at, now, older_than),
        )
        .order_by(Order.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for order_id in order_ids:
        queue_credit(uow, order_id)
    if order_ids:
        uow.session.execute(
            update(Order)
            .where(Order.id.in_(order_ids))
            .values(points_requeues=Order.points_requeues + 1)
            .execution_options(synchronize_session=False)
        )
    uow.commit()
    return len(order_ids)
