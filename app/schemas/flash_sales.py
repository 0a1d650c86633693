"""Flash sales on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from app.schemas.common import StrictSchema, Timestamp, cents, count, text


class FlashSaleCreateSchema(StrictSchema):
    goods_id = text(1, 64, required=True)
    price_cents = cents(minimum=1, required=True)
    quantity = count(minimum=1, required=True)
    per_user_limit = count(minimum=1, required=True)
    starts_at = Timestamp(required=True)
    ends_at = Timestamp(required=True)


class FlashSaleSchema(ma.Schema):
    id = fields.String()
    goods_id = fields.String()
    price_cents = fields.Integer()
    quantity = fields.Integer()
    per_user_limit = fields.Integer()
    starts_at = Timestamp()
    ends_at = Timestamp()
    remaining = fields.Integer()


class PurchaseSchema(StrictSchema):
    quantity = count(minimum=1, required=True)


class PurchaseResultSchema(ma.Schema):
    order_id = fields.String()
