"""The catalog: public reads, operator writes."""

from __future__ import annotations

from typing import Any

from app.api.auth import operator_required
from app.api.blueprint import Blueprint
from app.extension import runtime
from app.schemas.common import PageQuerySchema
from app.schemas.goods import GoodsCreateSchema, GoodsPageSchema, GoodsSchema, RestockSchema
from app.services import goods

blp = Blueprint("goods", __name__, url_prefix="/api/v1/goods", description="Goods and stock")


@blp.post("")
@operator_required
@blp.arguments(GoodsCreateSchema)
@blp.response(201, GoodsSchema)
def create_goods(data: dict[str, Any]) -> Any:
    with runtime().db.uow() as uow:
        return goods.create_goods(uow, data["sku"], data["name"], data["price_cents"], data["stock"])


@blp.get("")
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, GoodsPageSchema)
def list_goods(query: dict[str, Any]) -> Any:
    with runtime().db.uow() as uow:
        return goods.list_goods(uow, query["limit"], query["cursor"])


@blp.get("/<goods_id>")
@blp.response(200, GoodsSchema)
def get_goods(goods_id: str) -> Any:
    with runtime().db.uow() as uow:
        return goods.get_goods(uow, goods_id)


@blp.post("/<goods_id>/restock")
@operator_required
@blp.arguments(RestockSchema)
@blp.response(200, GoodsSchema)
def restock(data: dict[str, Any], goods_id: str) -> Any:
    with runtime().db.uow() as uow:
        return goods.restock(uow, goods_id, data["quantity"])
