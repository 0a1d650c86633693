"""Stock movements of an order: reserve, release, sell.

Each moves one line by a single conditional UPDATE, so no two writers can lose each other's
changes and no counter can go negative. Lines are taken in goods-id order so that two orders
for the same goods can never deadlock each other.
"""

from __future__ import annotations

from sqlalchemy import select, update

from app.db import UnitOfWork
from app.errors import OutOfStock
from app.models.goods import Goods
from app.models.orders import OrderItem
from app.timeutil import utcnow


def _lines(uow: UnitOfWork, order_id: str) -> list[OrderItem]:
    return list(
        uow.session.scalars(
            select(OrderItem).where(OrderItem.order_id == order_id).order_by(OrderItem.goods_id)
        )
    )


def reserve(uow: UnitOfWork, order_id: str) -> None:
    """Move every line from available to reserved, or none: OutOfStock rolls the lot back."""
    for line in _lines(uow, order_id):
        moved = uow.session.execute(
            update(Goods)
            .where(Goods.id == line.goods_id, Goods.stock_available >= line.quantity)
            .values(
                stock_available=Goods.stock_available - line.quantity,
                stock_reserved=Goods.stock_reserved + line.quantity,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise OutOfStock(f"Not enough stock of {line.goods_id} for {line.quantity}.")


def release(uow: UnitOfWork, order_id: str) -> None:
    """Return reserved units to available (the compensation of `reserve`)."""
    _move(uow, order_id, to_available=True)


def sell(uow: UnitOfWork, order_id: str) -> None:
    """Reserved units become sold (the order is confirmed)."""
    _move(uow, order_id, to_available=False)


def _move(uow: UnitOfWork, order_id: str, to_available: bool) -> None:
    for line in _lines(uow, order_id):
        target = Goods.stock_available if to_available else Goods.stock_sold
        moved = uow.session.execute(
            update(Goods)
            .where(Goods.id == line.goods_id, Goods.stock_reserved >= line.quantity)
            .values(
                {
                    Goods.stock_reserved: Goods.stock_reserved - line.quantity,
                    target: target + line.quantity,
                    Goods.updated_at: utcnow(),
                }
            )
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            # Only a bug gets here (the saga moves reserved units once): fail loudly.
            raise RuntimeError(f"order {order_id}: {line.quantity} of {line.goods_id} are not reserved")
