"""The sandbox provider's webhook body. Unknown fields are ignored here (a provider may add
some), but the ones we use are strictly typed."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.schemas.common import StrictInteger, cents, text


class WebhookDataSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    payment_id = text(1, 64, required=True)
    amount_cents = cents(minimum=0, required=True)
    currency = text(3, 3, required=True)


class WebhookSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    id = text(1, 255, required=True)
    type = fields.String(
        required=True, validate=validate.OneOf(("payment.succeeded", "payment.failed", "refund.succeeded"))
    )
    created = StrictInteger(required=True, validate=validate.Range(min=0, max=10**11))
    data = fields.Nested(WebhookDataSchema, required=True)


class WebhookAckSchema(ma.Schema):
    received = fields.Boolean()
