"""Coupons granted by the operator to one user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.db import UnitOfWork
from app.ids import new_id
from app.models import Coupon, User
from app.models.coupons import AVAILABLE
from app.services.errors import NotFound
from app.services.lookup import find
from app.services.pagination import Page, paginate


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
