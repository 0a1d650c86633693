"""Orders on the wire."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.config import PAYMENT_PROVIDERS
from app.models.orders import STATUSES
from app.schemas.common import PageQuerySchema, StrictSchema, Timestamp, count, text
from app.services.order_reads import OrderView, PaymentView
from app.services.pagination import Page
from app.timeutil import rfc3339


class OrderLineSchema(StrictSchema):
    goods_id = text(1, 64, required=True)
    quantity = count(minimum=1, maximum=100, required=True)


class OrderCreateSchema(StrictSchema):
    items = fields.List(
        fields.Nested(OrderLineSchema), required=True, validate=validate.Length(min=1, max=20)
    )
    coupon_id = text(1, 64, load_default=None, allow_none=True)
    # Absent when not given, so that a body without it hashes as it always did (idempotency).
    payment_provider = fields.String(validate=validate.OneOf(PAYMENT_PROVIDERS))

    @ma.validates("items")
    def distinct_goods(self, items: list[dict[str, Any]], **_kwargs: Any) -> None:
        seen: set[str] = set()
        for item in items:
            goods_id = item.get("goods_id")  # lines that failed their own validation lack it
            if goods_id is None:
                continue
            if goods_id in seen:
                raise ma.ValidationError(f"Goods {goods_id} appear twice; use one line per goods.")
            seen.add(goods_id)


class OrderItemSchema(ma.Schema):
    goods_id = fields.String()
    quantity = fields.Integer()
    unit_price_cents = fields.Integer()


class PaymentSchema(ma.Schema):
    id = fields.String()
    provider = fields.String()
    provider_payment_id = fields.String()
    status = fields.String()
    amount_cents = fields.Integer()
    checkout_url = fields.String(allow_none=True)


PAYMENT_SCHEMA = PaymentSchema()  # built once: building a schema costs more than a dump


class SagaRefSchema(ma.Schema):
    id = fields.String()
    status = fields.String()


class OrderSchema(ma.Schema):
    id = fields.String()
    user_id = fields.String()
    status = fields.String()
    items = fields.List(fields.Nested(OrderItemSchema))
    total_cents = fields.Integer()
    discount_cents = fields.Integer()
    payable_cents = fields.Integer()
    coupon_id = fields.String(allow_none=True)
    flash_sale_id = fields.String(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    payment_deadline = Timestamp(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    payment = fields.Method("dump_payment", metadata={"type": "object", "nullable": True})
    saga = fields.Nested(SagaRefSchema, allow_none=True)

    def dump_payment(self, order: Any) -> dict[str, Any] | None:
        """Shown once the provider has created it: before that there is nothing to pay."""
        payment = order.payment
        if payment is None or payment.provider_payment_id is None:
            return None
        result: dict[str, Any] = PAYMENT_SCHEMA.dump(payment)
        return result


def view_body(order: OrderView) -> dict[str, Any]:
    """What `OrderSchema` dumps of an order read for the API (`order_reads`), built directly.

    The reads answer the requests a buyer makes most, and marshmallow's dump, field by field,
    was the larger part of a page's cost. `OrderSchema` still documents the body, and a test
    holds the two to the same output for any order."""
    payment, saga, deadline = order.payment, order.saga, order.payment_deadline
    return {
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "items": [
            {"goods_id": item.goods_id, "quantity": item.quantity, "unit_price_cents": item.unit_price_cents}
            for item in order.items
        ],
        "total_cents": order.total_cents,
        "discount_cents": order.discount_cents,
        "payable_cents": order.payable_cents,
        "coupon_id": order.coupon_id,
        "flash_sale_id": order.flash_sale_id,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
        "payment_deadline": rfc3339(deadline) if deadline is not None else None,
        "cancel_reason": order.cancel_reason,
        "payment": _payment_body(payment)
        if payment is not None and payment.provider_payment_id is not None
        else None,
        "saga": {"id": saga.id, "status": saga.status} if saga is not None else None,
    }


def _payment_body(payment: PaymentView) -> dict[str, Any]:
    return {
        "id": payment.id,
        "provider": payment.provider,
        "provider_payment_id": payment.provider_payment_id,
        "status": payment.status,
        "amount_cents": payment.amount_cents,
        "checkout_url": payment.checkout_url,
    }


def page_body(page: Page[OrderView]) -> dict[str, Any]:
    """What `OrderPageSchema` dumps of a page of order reads, its orders built as `view_body`."""
    return {"items": [view_body(order) for order in page.items], "next_cursor": page.next_cursor}


class OrderPageSchema(ma.Schema):
    items = fields.List(fields.Nested(OrderSchema))
    next_cursor = fields.String(allow_none=True)


class OrderQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    user_id = text(1, 64, load_default=None)
