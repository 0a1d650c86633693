"""Orders as the API shows them: one SELECT per read, and plain objects the schemas dump.

Reading an order is the request a buyer makes most. Through the ORM it took four queries (the
order, its lines, its payment, its saga), the ORM's building of each object, and a rollback to end
the transaction. Here the order is read joined with all three in one statement, on a connection
that needs no transaction to end, with the driver's own cursor (`Database.fetch`); so is a page of
orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from itertools import product
from typing import Any

from sqlalchemy import Select, Table, bindparam, select

from app.db import Database
from app.errors import NotFound
from app.ids import looks_like_id
from app.models.orders import ORDER_ITEMS, ORDERS
from app.models.payments import Payment
from app.services.pagination import Page, decode_cursor, encode_cursor
from sagas.models import Saga

PAYMENTS: Table = Payment.__table__  # type: ignore[assignment]
SAGAS: Table = Saga.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class ItemView:
    goods_id: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class PaymentView:
    id: str
    provider: str
    provider_payment_id: str | None
    status: str
    amount_cents: int
    checkout_url: str | None


@dataclass(frozen=True)
class SagaView:
    id: str
    status: str


@dataclass(frozen=True)
class OrderView:
    id: str
    user_id: str
    status: str
    total_cents: int
    discount_cents: int
    payable_cents: int
    coupon_id: str | None
    flash_sale_id: str | None
    created_at: datetime
    updated_at: datetime
    payment_deadline: datetime | None
    cancel_reason: str | None
    items: list[ItemView]
    payment: PaymentView | None
    saga: SagaView | None


def _columns(view: type, but: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The columns a view is made of, in its fields' order: a row's slice makes the view."""
    return tuple(field.name for field in fields(view) if field.name not in but)


ORDER_COLUMNS = _columns(OrderView, but=("items", "payment", "saga"))
ITEM_COLUMNS = _columns(ItemView)
PAYMENT_COLUMNS = _columns(PaymentView)
SAGA_COLUMNS = _columns(SagaView)


def order(db: Database, order_id: str, owner_id: str | None = None) -> OrderView:
    """`owner_id` set: someone else's order is reported as missing, never as forbidden."""
    found = []
    if looks_like_id(order_id):
        found = _views(db.fetch(ONE_ORDER, {"order_id": order_id}))
    if not found or (owner_id is not None and found[0].user_id != owner_id):
        raise NotFound(f"No order {order_id!r}.")
    return found[0]


def orders(
    db: Database, user_id: str | None, status: str | None, limit: int, cursor: str | None
) -> Page[OrderView]:
    """A page of orders in id order (so, by time), after `cursor`; `limit` orders at most."""
    params: dict[str, Any] = {"user_id": user_id, "status": status, "limit": limit + 1}
    if cursor:
        params["after"] = decode_cursor(cursor)
    page = PAGES[(user_id is not None, status is not None, "after" in params)]
    views = _views(db.fetch(page, params))
    more = len(views) > limit
    views = views[:limit]
    return Page(views, encode_cursor(views[-1].id) if more and views else None)


def _joined() -> Select[Any]:
    """Each order's row with each of its lines, its payment and its saga (one row per line)."""
    columns = [
        *(ORDERS.c[name] for name in ORDER_COLUMNS),
        *(ORDER_ITEMS.c[name].label(f"item_{name}") for name in ITEM_COLUMNS),
        *(PAYMENTS.c[name].label(f"payment_{name}") for name in PAYMENT_COLUMNS),
        *(SAGAS.c[name].label(f"saga_{name}") for name in SAGA_COLUMNS),
    ]
    joined = (
        ORDERS.outerjoin(ORDER_ITEMS, ORDER_ITEMS.c.order_id == ORDERS.c.id)
        .outerjoin(PAYMENTS, PAYMENTS.c.order_id == ORDERS.c.id)
        .outerjoin(SAGAS, SAGAS.c.subject_id == ORDERS.c.id)
    )
    return select(*columns).select_from(joined).order_by(ORDERS.c.id, ORDER_ITEMS.c.position)


def _page(by_user: bool, by_status: bool, after: bool) -> Select[Any]:
    """A page's orders joined as `_joined`: the first `limit` ids (by the buyer `user_id`, in
    `status`, after `after`, as asked) in a subquery."""
    page = select(ORDERS.c.id)
    if by_user:
        page = page.where(ORDERS.c.user_id == bindparam("user_id"))
    if by_status:
        page = page.where(ORDERS.c.status == bindparam("status"))
    if after:
        page = page.where(ORDERS.c.id > bindparam("after"))
    page_ids = page.order_by(ORDERS.c.id).limit(bindparam("limit")).scalar_subquery()
    return JOINED.where(ORDERS.c.id.in_(page_ids))


# Built once: building the statement cost a read about as much as running it. A page's
# statement for each combination of its filters.
JOINED = _joined()
ONE_ORDER = JOINED.where(ORDERS.c.id == bindparam("order_id"))
PAGES = {filters: _page(*filters) for filters in product((False, True), repeat=3)}


# Where each part of a joined row is: the order's columns, then its line's, its payment's and
# its saga's, in `_joined`'s order.
_ITEM = len(ORDER_COLUMNS)
_PAYMENT = _ITEM + len(ITEM_COLUMNS)
_SAGA = _PAYMENT + len(PAYMENT_COLUMNS)


def _views(rows: Iterable[Sequence[Any]]) -> list[OrderView]:
    """One view per order, its lines in order, from rows sorted by order then line."""
    views: list[OrderView] = []
    for row in rows:
        if not views or views[-1].id != row[0]:
            views.append(_view(row))
        if row[_ITEM] is not None:
            views[-1].items.append(ItemView(*row[_ITEM:_PAYMENT]))
    return views


def _view(row: Sequence[Any]) -> OrderView:
    payment = PaymentView(*row[_PAYMENT:_SAGA]) if row[_PAYMENT] is not None else None
    saga = SagaView(*row[_SAGA:]) if row[_SAGA] is not None else None
    return OrderView(
        **dict(zip(ORDER_COLUMNS, row[:_ITEM], strict=True)), items=[], payment=payment, saga=saga
    )
