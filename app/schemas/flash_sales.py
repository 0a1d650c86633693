"""Flash sales on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.schemas.common import MAX_COUNT, StrictInteger, StrictSchema, Timestamp, cents, count, text


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


QUANTITY_RULE = f"Must be an integer from 1 to {MAX_COUNT}."


class PurchaseSchema(StrictSchema):
    """A purchase's body, in the words this endpoint has always answered with: one message for a
    body that is not an object, one for a quantity that is null or missing, one for a quantity
    that is not an integer in range."""

    error_messages = {"type": 'Expected a JSON object like {"quantity": 1}.'}

    quantity = StrictInteger(
        required=True,
        validate=validate.Range(min=1, max=MAX_COUNT, error=QUANTITY_RULE),
        error_messages={"invalid": QUANTITY_RULE, "null": "Missing data for required field."},
    )


class PurchaseResultSchema(ma.Schema):
    order_id = fields.String()
