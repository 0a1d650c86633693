"""The catalog: goods and restocking.

Stock counters change only through single conditional UPDATE statements, never by reading a
value into Python and writing it back, so concurrent writers can't lose each other's updates.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError

from app.bounds import MAX_COUNT
from app.db import UnitOfWork
from app.errors import Conflict, InvalidInput, NotFound
from app.ids import looks_like_id, new_id
from app.models.flash_sales import FlashSale
from app.models.goods import Goods
from app.services.lookup import find
from app.services.pagination import Page, paginate
from app.timeutil import utcnow


def _on_hand() -> ColumnElement[int]:
    """The goods' units not yet sold: available, reserved, and held by its flash sales (which
    return the unsold ones to `stock_available` when they end)."""
    held = (
        select(func.coalesce(func.sum(FlashSale.units_held), 0))
        .where(FlashSale.goods_id == Goods.id)
        .scalar_subquery()
    )
    return Goods.stock_available + Goods.stock_reserved + held


def create_goods(uow: UnitOfWork, sku: str, name: str, price_cents: int, stock: int) -> Goods:
    goods = Goods(
        id=new_id("gds"),
        sku=sku,
        name=name,
        price_cents=price_cents,
        stock_available=stock,
        stock_reserved=0,
        stock_sold=0,
    )
    uow.session.add(goods)
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        raise Conflict(f"Goods with sku {sku!r} already exist.") from None
    return goods


def get_goods(uow: UnitOfWork, goods_id: str) -> Goods:
    goods = find(uow.session, Goods, goods_id)
    if goods is None:
        raise NotFound(f"No goods {goods_id!r}.")
    return goods


def list_goods(uow: UnitOfWork, limit: int, cursor: str | None) -> Page[Goods]:
    return paginate(uow.session, select(Goods), Goods.id, limit, cursor)


def restock(uow: UnitOfWork, goods_id: str, quantity: int) -> Goods:
    """Add `quantity` units, unless that would take the units on hand past the contract's bound:
    the bound holds for what a request leads to, not only for the request's own field."""
    if not looks_like_id(goods_id):
        raise NotFound(f"No goods {goods_id!r}.")
    result = uow.session.execute(
        update(Goods)
        .where(Goods.id == goods_id, _on_hand() + quantity <= MAX_COUNT)
        .values(stock_available=Goods.stock_available + quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        uow.rollback()
        get_goods(uow, goods_id)  # NotFound if there are no such goods
        raise InvalidInput("quantity", f"Restocking would take the goods past {MAX_COUNT} units in stock.")
    uow.commit()
    goods = uow.session.get(Goods, goods_id, populate_existing=True)
    assert goods is not None
    return goods
