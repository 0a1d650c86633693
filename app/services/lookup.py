"""Loading a row by id, where anything that is not one of our ids is simply not found.

Checking the shape first keeps odd input (NUL bytes, huge strings) away from the database.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session, lazyload

from app.ids import looks_like_id
from app.models.orders import Order

M = TypeVar("M")

_HELD_ORDERS = "ordersaga.orders"


def find(session: Session, model: type[M], row_id: str, for_update: bool = False) -> M | None:
    if not looks_like_id(row_id):
        return None
    return session.get(model, row_id, with_for_update=for_update or None)


def order_row(session: Session, order_id: str, lock: bool = False) -> Order | None:
    """The order alone: its items, payment and saga load only if touched, in this session.

    Order's relationships load eagerly by default, which the views need (they serialize the
    order after its session has closed). The saga's steps read one or two columns of the order
    at a time; loading it with its items, payment, saga and the saga's steps takes five queries
    each time, far more than the step's own work (docs/benchmarks.md).

    The session keeps the order it returns until the session ends. Its identity map holds
    unchanged rows weakly, so an order read for one column and dropped would be read again by
    the next lookup, several times in one saga transaction. Bulk updates of orders therefore
    keep the session's copy in step (`synchronize_session="evaluate"`).

    A flash saga's two steps ask for their order seven times, and the session's own `get` is
    not cheap even when it has the order, so a lookup without a lock answers from the orders
    this session holds. That is the object `get` would return: the same row of the same session.
    """
    held: dict[str, Order] = session.info.setdefault(_HELD_ORDERS, {})
    if not lock:
        kept = held.get(order_id)
        if kept is not None and kept in session:
            return kept
    options = (lazyload(Order.items), lazyload(Order.payment), lazyload(Order.saga))
    if lock:  # the row lock, and fresh values even if the session has the order already
        order = session.get(Order, order_id, options=options, with_for_update=True, populate_existing=True)
    else:
        order = session.get(Order, order_id, options=options)
    if order is not None:
        held[order_id] = order
    return order
