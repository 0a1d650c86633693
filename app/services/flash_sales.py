"""Flash sales, on the SQL side: creating a sale, its terms, and its end.

Stock stays conserved: goods' available + reserved + sold, plus every sale's `units_held`,
equals all stock ever added. Units move by single conditional UPDATEs only. The rest of the path
is in flash_admission (who wins), flash_stock (a winner's units through its saga) and
flash_pacing (when a winner's saga starts); docs/flash-sales.md explains it end to end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Table, func, select, update

from app.bounds import MAX_CENTS
from app.db import UnitOfWork
from app.errors import (
    InsufficientStock,
    InvalidInput,
    NotFound,
)
from app.ids import new_id
from app.models.flash_sales import FlashSale, FlashSaleBuyer
from app.models.goods import Goods
from app.models.orders import PENDING, Order, OrderItem
from app.services.lookup import find
from app.services.order_saga import RESERVE_STOCK
from app.timeutil import utcnow
from sagas.models import ACTION, STEP_PENDING, STEP_RUNNING, Saga, SagaStep

BUYERS: Table = FlashSaleBuyer.__table__  # type: ignore[assignment]


SALES: Table = FlashSale.__table__  # type: ignore[assignment]


def _check_terms(new: NewSale) -> None:
    if new.ends_at <= new.starts_at:
        raise InvalidInput("ends_at", "Must be after starts_at.")
    if new.price_cents * min(new.per_user_limit, new.quantity) > MAX_CENTS:
        # A buyer's order may take all it is allowed at once: its total must stay within bounds.
        raise InvalidInput(
            "per_user_limit",
            f"price_cents times the units one buyer may take may be at most {MAX_CENTS} cents.",
        )


@dataclass(frozen=True)
class NewSale:
    goods_id: str
    price_cents: int
    quantity: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime


def create_sale(uow: UnitOfWork, new: NewSale) -> FlashSale:
    """Move the sale's units out of the goods' available stock into the sale, and commit."""
    _check_terms(new)
    if find(uow.session, Goods, new.goods_id) is None:
        raise InvalidInput("goods_id", f"Unknown goods {new.goods_id!r}.")
    moved = uow.session.execute(
        update(Goods)
        .where(Goods.id == new.goods_id, Goods.stock_available >= new.quantity)
        .values(stock_available=Goods.stock_available - new.quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise InsufficientStock(f"Goods {new.goods_id} have fewer than {new.quantity} units available.")
    sale = FlashSale(id=new_id("fls"), **asdict(new), admitted=0, units_held=new.quantity)
    uow.session.add(sale)
    uow.commit()
    return sale


def get_sale(uow: UnitOfWork, sale_id: str) -> FlashSale:
    sale = find(uow.session, FlashSale, sale_id)
    if sale is None:
        raise NotFound(f"No flash sale {sale_id!r}.")
    return sale


@dataclass(frozen=True)
class SaleTerms:
    """What a winner's order needs of its sale."""

    id: str
    goods_id: str
    price_cents: int
    per_user_limit: int


_terms: dict[str, SaleTerms] = {}


TERMS_CACHED = 1024


def sale_terms(uow: UnitOfWork, sale_id: str) -> SaleTerms:
    """A sale's terms never change once it is created, so each process reads them from SQL once:
    every winner after the first saves a query."""
    terms = _terms.get(sale_id)
    if terms is None:
        sale = get_sale(uow, sale_id)
        terms = SaleTerms(sale.id, sale.goods_id, sale.price_cents, sale.per_user_limit)
        if len(_terms) >= TERMS_CACHED:
            _terms.clear()
        _terms[sale_id] = terms
    return terms


def settle_ended(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Return the unsold units of ended sales to their goods' stock_available.

    Units of admitted orders whose saga has not reserved them yet stay with the sale for those
    orders; the sweep runs this again, so units freed later (a cancelled order) follow too.
    Returns the number of units moved.
    """
    now = now or utcnow()
    sales = list(
        uow.session.scalars(
            select(FlashSale)
            .where(FlashSale.ends_at <= now, FlashSale.units_held > 0)
            .with_for_update(skip_locked=True)
        )
    )
    moved_total = 0
    for sale in sales:
        awaiting_reserve = (
            uow.session.scalar(
                select(func.coalesce(func.sum(OrderItem.quantity), 0))
                .join(Order, Order.id == OrderItem.order_id)
                .join(Saga, Saga.subject_id == Order.id)
                .join(
                    SagaStep,
                    (SagaStep.saga_id == Saga.id)
                    & (SagaStep.kind == ACTION)
                    & (SagaStep.name == RESERVE_STOCK),
                )
                .where(
                    Order.flash_sale_id == sale.id,
                    Order.status == PENDING,
                    SagaStep.status.in_((STEP_PENDING, STEP_RUNNING)),
                )
            )
            or 0
        )
        unsold = sale.units_held - int(awaiting_reserve)
        if unsold <= 0:
            continue
        sale.units_held -= unsold
        sale.settled_at = sale.settled_at or now
        uow.session.execute(
            update(Goods)
            .where(Goods.id == sale.goods_id)
            .values(stock_available=Goods.stock_available + unsold, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        moved_total += unsold
    uow.commit()
    return moved_total
