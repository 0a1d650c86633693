"""Coupons on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from app.schemas.common import StrictSchema, Timestamp, cents


class CouponCreateSchema(StrictSchema):
    amount_off_cents = cents(minimum=1, required=True)
    min_order_cents = cents(minimum=0, load_default=0)
    expires_at = Timestamp(load_default=None, allow_none=True)


class CouponSchema(ma.Schema):
    id = fields.String()
    user_id = fields.String()
    amount_off_cents = fields.Integer()
    min_order_cents = fields.Integer()
    expires_at = Timestamp(allow_none=True)
    status = fields.String(attribute="display_status")
    created_at = Timestamp()


class CouponPageSchema(ma.Schema):
    items = fields.List(fields.Nested(CouponSchema))
    next_cursor = fields.String(allow_none=True)
