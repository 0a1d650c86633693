"""A flash order's units through its saga: the sale holds them from the admission on; the saga
makes them the order's reserve, and a cancellation gives them back to the sale."""

from __future__ import annotations

from sqlalchemy import update

from app.db import UnitOfWork
from app.models.flash_sales import FlashSale, FlashSaleBuyer
from app.models.goods import Goods
from app.models.orders import Order
from app.services.lookup import order_row
from app.timeutil import utcnow


def order_units(uow: UnitOfWork, order_id: str) -> tuple[Order, int]:
    order = order_row(uow.session, order_id)
    assert order is not None and order.flash_sale_id is not None
    return order, sum(item.quantity for item in order.items)


def reserve_for_order(uow: UnitOfWork, order_id: str) -> None:
    """The saga's reserve_stock for a flash order: the sale's units become the order's reserve."""
    order, quantity = order_units(uow, order_id)
    held = uow.session.execute(
        update(FlashSale)
        .where(FlashSale.id == order.flash_sale_id, FlashSale.units_held >= quantity)
        .values(units_held=FlashSale.units_held - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(
            f"flash sale {order.flash_sale_id} holds fewer than {quantity} units for {order_id}"
        )
    uow.session.execute(
        update(Goods)
        .where(Goods.id == order.items[0].goods_id)
        .values(stock_reserved=Goods.stock_reserved + quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def release_for_order(uow: UnitOfWork, order_id: str) -> None:
    """Compensation of `reserve_for_order`: the units go back to the sale (the end of the sale
    sweeps them on to the goods if it is already over)."""
    order, quantity = order_units(uow, order_id)
    moved = uow.session.execute(
        update(Goods)
        .where(Goods.id == order.items[0].goods_id, Goods.stock_reserved >= quantity)
        .values(stock_reserved=Goods.stock_reserved - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(f"order {order_id}: {quantity} units are not reserved")
    uow.session.execute(
        update(FlashSale)
        .where(FlashSale.id == order.flash_sale_id)
        .values(units_held=FlashSale.units_held + quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def release_admission(uow: UnitOfWork, order_id: str) -> tuple[str, str, int]:
    """A flash order was cancelled: its units may be bought by someone else, and its buyer's
    count goes down. Called once, in the transaction that marks the saga COMPENSATED."""
    order, quantity = order_units(uow, order_id)
    sale_id = str(order.flash_sale_id)
    uow.session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale_id, FlashSale.admitted >= quantity)
        .values(admitted=FlashSale.admitted - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    uow.session.execute(
        update(FlashSaleBuyer)
        .where(
            FlashSaleBuyer.sale_id == sale_id,
            FlashSaleBuyer.user_id == order.user_id,
            FlashSaleBuyer.units >= quantity,
        )
        .values(units=FlashSaleBuyer.units - quantity)
        .execution_options(synchronize_session=False)
    )
    return sale_id, order.user_id, quantity
