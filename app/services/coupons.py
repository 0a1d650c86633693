"""Coupons granted by the operator to one user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from app.db import UnitOfWork
from app.errors import CouponUnavailable, NotFound
from app.ids import new_id
from app.models.coupons import AVAILABLE, LOCKED, USED, Coupon
from app.models.orders import Order
from app.models.users import User
from app.services.lookup import find
from app.services.pagination import Page, paginate
from app.timeutil import utcnow


def create_coupon(
    uow: UnitOfWork,
    user_id: str,
    amount_off_cents: int,
    min_order_cents: int,
    expires_at: datetime | None,
) -> Coupon:
    """An expiry in the past is accepted: the coupon simply reads as EXPIRED."""
    if find(uow.session, User, user_id) is None:
        raise NotFound(f"No user {user_id!r}.")
    coupon = Coupon(
        id=new_id("cpn"),
        user_id=user_id,
        amount_off_cents=amount_off_cents,
        min_order_cents=min_order_cents,
        expires_at=expires_at,
        status=AVAILABLE,
    )
    uow.session.add(coupon)
    uow.commit()
    return coupon


def get_coupon(uow: UnitOfWork, coupon_id: str, owner_id: str | None = None) -> Coupon:
    """`owner_id` set: someone else's coupon is reported as missing, never as forbidden."""
    coupon = find(uow.session, Coupon, coupon_id)
    if coupon is None or (owner_id is not None and coupon.user_id != owner_id):
        raise NotFound(f"No coupon {coupon_id!r}.")
    return coupon


def list_user_coupons(uow: UnitOfWork, user_id: str, limit: int, cursor: str | None) -> Page[Coupon]:
    statement = select(Coupon).where(Coupon.user_id == user_id)
    return paginate(uow.session, statement, Coupon.id, limit, cursor)


def lock_for_order(uow: UnitOfWork, order: Order) -> None:
    """Hold the order's coupon: one conditional UPDATE, so one live order at most holds it."""
    now = utcnow()
    locked = uow.session.execute(
        update(Coupon)
        .where(
            Coupon.id == order.coupon_id,
            Coupon.user_id == order.user_id,
            Coupon.status == AVAILABLE,
            or_(Coupon.expires_at.is_(None), Coupon.expires_at > now),
            Coupon.min_order_cents <= order.total_cents,
        )
        .values(status=LOCKED, order_id=order.id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if locked.rowcount != 1:  # type: ignore[attr-defined]
        raise CouponUnavailable(f"Coupon {order.coupon_id} cannot be used for order {order.id}.")


def release_for_order(uow: UnitOfWork, order: Order) -> None:
    """Give a LOCKED coupon back (does nothing if this order never held it)."""
    _transition(uow, order, LOCKED, AVAILABLE, keep_order=False)


def use_for_order(uow: UnitOfWork, order: Order) -> None:
    _transition(uow, order, LOCKED, USED, keep_order=True)


def _transition(uow: UnitOfWork, order: Order, expected: str, new: str, keep_order: bool) -> None:
    uow.session.execute(
        update(Coupon)
        .where(Coupon.id == order.coupon_id, Coupon.order_id == order.id, Coupon.status == expected)
        .values(status=new, order_id=order.id if keep_order else None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
