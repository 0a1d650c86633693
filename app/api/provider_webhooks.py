"""The real providers' webhooks: Alipay, WeChat Pay and Stripe.

Each adapter verifies its provider's notification over the raw body and reads it into the shop's
words (`Notification`); from there every provider takes the sandbox's path, so de-duplication,
the amount check and the order's moves are one implementation. What differs is only the answer
each provider expects before it stops retrying.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Response, request
from requests.structures import CaseInsensitiveDict

from app.api.blueprint import Blueprint
from app.api.payments import counted
from app.errors import AmountMismatch, InvalidSignature, NotFound
from app.extension import runtime
from app.payments import Providers
from app.payments.port import (
    Notification,
    NotificationKind,
    NotificationMismatch,
    NotificationReader,
    NotificationRefused,
)
from app.problems import problem_body, problem_response
from app.services import payment_events

blp = Blueprint(
    "provider_webhooks", __name__, url_prefix="/api/v1/payments", description="Payment provider webhooks"
)

REAL_PROVIDERS = ("alipay", "wechatpay", "stripe")
FORM = {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
JSON = {"application/json": {"schema": {"type": "object"}}}


@blp.post("/webhooks/alipay")
@blp.doc(
    summary="Alipay's asynchronous notification (form-encoded, RSA2-signed)",
    requestBody={"content": FORM},
    responses={"200": {"description": "the plain body `success`"}, "400": {"description": "`fail`"}},
)
def alipay_webhook() -> Response:
    try:
        _receive("alipay")
    except InvalidSignature:
        return Response("fail", status=400, mimetype="text/plain")
    return Response("success", status=200, mimetype="text/plain")


@blp.post("/webhooks/wechatpay")
@blp.doc(
    summary="WeChat Pay's v3 notification (Wechatpay-* headers, AES-256-GCM resource)",
    requestBody={"content": JSON},
    responses={"204": {"description": "received"}},
)
def wechatpay_webhook() -> Response:
    try:
        _receive("wechatpay")
    except (InvalidSignature, AmountMismatch, NotFound) as error:
        # WeChat Pay reads `code` and `message`; the rest is the shop's problem+json.
        status = {InvalidSignature: 400, AmountMismatch: 422, NotFound: 404}[type(error)]
        body = problem_body(status, error.code, error.detail) | {"message": error.detail}
        return problem_response(status, body, {})
    return Response(status=204)


@blp.post("/webhooks/stripe")
@blp.doc(
    summary="Stripe's webhook events (Stripe-Signature)",
    requestBody={"content": JSON},
    responses={"200": {"description": '`{"received": true}`'}},
)
def stripe_webhook() -> Any:
    _receive("stripe")
    return {"received": True}


def _receive(name: str) -> str:
    """Verify, read and apply one notification; raises the errors the answer is made from."""
    app_state = runtime()

    def receive() -> str:
        notification = _read(app_state.providers, name)
        if notification.kind == NotificationKind.IGNORED:
            return "ignored"
        event = _event(name, notification)
        return payment_events.handle_webhook(app_state.db.uow, app_state.engine, event)

    return counted(name, receive)


def _read(providers: Providers, name: str) -> Notification:
    if name not in providers:
        raise NotFound(f"The {name} provider is not enabled here.")
    reader: NotificationReader = providers[name]  # type: ignore[assignment]
    try:
        headers = CaseInsensitiveDict(request.headers.items())
        return reader.read_notification(headers, request.get_data(cache=True), time.time())
    except NotificationRefused as refused:
        raise InvalidSignature(str(refused)) from None
    except NotificationMismatch as mismatch:
        raise AmountMismatch(str(mismatch)) from None


def _event(name: str, notification: Notification) -> payment_events.WebhookEventIn:
    return payment_events.WebhookEventIn(
        provider=name,
        event_id=notification.event_id,
        type=notification.kind.value,
        provider_payment_id=notification.provider_payment_id,
        amount_cents=notification.amount_cents,
        currency=notification.currency,
        payment_id=notification.payment_id,
    )
