"""Goods on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from app.schemas.common import StrictSchema, Timestamp, cents, count, name_field, sku_field


class GoodsCreateSchema(StrictSchema):
    sku = sku_field(required=True)
    name = name_field(required=True)
    price_cents = cents(minimum=1, required=True)
    stock = count(minimum=0, required=True)


class RestockSchema(StrictSchema):
    quantity = count(minimum=1, required=True)


class GoodsSchema(ma.Schema):
    id = fields.String()
    sku = fields.String()
    name = fields.String()
    price_cents = fields.Integer()
    stock_available = fields.Integer()
    stock_reserved = fields.Integer()
    stock_sold = fields.Integer()
    created_at = Timestamp()


class GoodsPageSchema(ma.Schema):
    items = fields.List(fields.Nested(GoodsSchema))
    next_cursor = fields.String(allow_none=True)
