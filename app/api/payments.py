"""The payment provider's webhook. The raw body is verified before anything is parsed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import request

from app import metrics
from app.api.blueprint import Blueprint
from app.errors import AmountMismatch, InvalidInput, InvalidSignature, NotFound
from app.extension import runtime
from app.problems import flatten_errors
from app.schemas.webhooks import WebhookAckSchema, WebhookSchema
from app.services import payment_events, webhooks

blp = Blueprint("payments", __name__, url_prefix="/api/v1/payments", description="Payment provider webhooks")

SIGNATURE_HEADER = "Sandbox-Signature"


class InvalidEvent(InvalidInput):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("body", "Invalid webhook event.")
        self.errors = errors


@blp.post("/webhooks/sandbox")
@blp.response(200, WebhookAckSchema)
@blp.doc(
    parameters=[{"in": "header", "name": SIGNATURE_HEADER, "required": True, "schema": {"type": "string"}}],
    requestBody={"content": {"application/json": {"schema": WebhookSchema}}},
)
def sandbox_webhook() -> Any:
    app_state = runtime()
    raw = request.get_data(cache=True)

    def receive() -> str:
        if not webhooks.verify(
            app_state.settings.sandbox_webhook_secret, request.headers.get(SIGNATURE_HEADER), raw, time.time()
        ):
            raise InvalidSignature("Missing or wrong signature, or a timestamp more than 300 s from now.")
        return payment_events.handle_webhook(app_state.db.uow, app_state.engine, _parse(raw))

    counted("sandbox", receive)
    return {"received": True}


def counted(provider: str, receive: Callable[[], str]) -> str:
    """Run one webhook's `receive` and count how it ended in ordersaga_webhooks_total: what it
    returned ("processed", "duplicate", "ignored"), or the refusal it raised."""
    result = "invalid"
    try:
        result = receive()
    except InvalidSignature:
        result = "invalid-signature"
        raise
    except AmountMismatch:
        result = "amount-mismatch"
        raise
    except NotFound:
        result = "not-found"
        raise
    finally:
        metrics.WEBHOOKS.labels(provider=provider, result=result).inc()
    return result


def _parse(raw: bytes) -> payment_events.WebhookEventIn:
    try:
        body = json.loads(raw)
        data = WebhookSchema().load(body)
    except (ValueError, RecursionError):
        raise InvalidEvent({"body": ["Invalid JSON."]}) from None
    except ma.ValidationError as error:
        raise InvalidEvent(flatten_errors(error.messages)) from None
    return payment_events.WebhookEventIn(
        provider="sandbox",
        event_id=data["id"],
        type=data["type"],
        provider_payment_id=data["data"]["payment_id"],
        amount_cents=data["data"]["amount_cents"],
        currency=data["data"]["currency"],
    )
