"""Points: a confirmed order earns its buyer `payable_cents // 100` points, exactly once."""

from __future__ import annotations

from sqlalchemy import update

from app.db import UnitOfWork
from app.models.orders import CONFIRMED, Order
from app.models.users import User


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
