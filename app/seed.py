"""Demo data for `make run`: a few goods and a user with a coupon.

Running it again adds nothing twice; it only issues the demo user a fresh token, since only a
hash of the old one was kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from app.db import UnitOfWork
from app.models.coupons import Coupon
from app.models.goods import Goods
from app.models.users import User
from app.services import coupons, goods, users

DEMO_GOODS = [
    ("DEMO-TEA", "Longjing green tea, 250 g", 12800, 100),
    ("DEMO-CUP", "Celadon tea cup", 4500, 40),
    ("DEMO-POT", "Yixing clay teapot", 36800, 10),
]
DEMO_EMAIL = "demo@example.com"


@dataclass(frozen=True)
class Seeded:
    user_id: str
    user_token: str
    coupon_id: str
    goods_ids: list[str]


def seed(new_uow: Callable[[], UnitOfWork]) -> Seeded:
    """Each step is its own unit of work, so a half-seeded database is finished by the next run."""
    goods_ids = []
    for sku, name, price, stock in DEMO_GOODS:
        with new_uow() as uow:
            existing = uow.session.scalar(select(Goods).where(Goods.sku == sku))
            goods_ids.append(existing.id if existing else goods.create_goods(uow, sku, name, price, stock).id)
    with new_uow() as uow:
        user = uow.session.scalar(select(User).where(User.email_key == DEMO_EMAIL))
        if user is None:
            created = users.create_user(uow, "Demo Buyer", DEMO_EMAIL)
            user_id, token = created.user.id, created.token
        else:
            user_id, token = user.id, users.reissue_token(uow, user.id)
    with new_uow() as uow:
        coupon = uow.session.scalar(select(Coupon).where(Coupon.user_id == user_id))
        coupon_id = coupon.id if coupon else coupons.create_coupon(uow, user_id, 2000, 10000, None).id
    return Seeded(user_id, token, coupon_id, goods_ids)
