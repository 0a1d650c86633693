"""A small world for driving the order saga step by step in-process: a user, goods, a coupon,
and an engine whose provider is a fake (everything else is real, on PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from app.config import Settings
from app.db import Database
from app.extension import runtime
from app.models.goods import Goods
from app.payments import Providers
from app.services import coupons, goods, order_saga, orders, users
from sagas.engine import SagaEngine
from sagas.models import Saga
from tests.support.fakes import FakeProvider


@dataclass
class World:
    db: Database
    engine: SagaEngine
    provider: FakeProvider
    user_id: str
    goods_id: str
    coupon_id: str

    def place(self, quantity: int = 2, coupon: bool = True) -> tuple[str, str]:
        placed = orders.place_order(
            self.db.uow,
            self.engine,
            orders.NewOrder(
                self.user_id, [orders.Line(self.goods_id, quantity)], self.coupon_id if coupon else None
            ),
        )
        assert placed.order.saga is not None
        return placed.order.id, placed.order.saga.id

    def read(self, model: Any, row_id: str) -> Any:
        with self.db.uow() as uow:
            return uow.session.get(model, row_id)

    def saga(self, saga_id: str) -> Saga:
        with self.db.uow() as uow:
            return self.engine.get(uow, saga_id)

    def stock(self) -> tuple[int, int, int]:
        g = self.read(Goods, self.goods_id)
        return g.stock_available, g.stock_reserved, g.stock_sold

    def abort(self, saga_id: str, reason: str = "user_cancelled") -> None:
        with self.db.uow() as uow:
            assert self.engine.abort(uow, saga_id, reason)
            uow.commit()


def make_world(app: Flask) -> World:
    app_state = runtime(app)
    settings: Settings = app_state.settings
    provider = FakeProvider()
    definition = order_saga.build(app_state.db.uow, Providers([provider]), settings)
    engine = SagaEngine(app_state.db.uow, {definition.name: definition})
    with app_state.db.uow() as uow:
        user_id = users.create_user(uow, "W", "w@example.com").user.id
    with app_state.db.uow() as uow:
        goods_id = goods.create_goods(uow, "W-1", "Tea", 1000, 10).id
    with app_state.db.uow() as uow:
        coupon_id = coupons.create_coupon(uow, user_id, 300, 0, None).id
    return World(app_state.db, engine, provider, user_id, goods_id, coupon_id)
