"""Flash sales. The purchase path is built so that a losing attempt touches no SQL at all:
the buyer is known from the token (which carries the user id) checked against a hash cached in
Redis, the load and rate checks and the gate are Redis, and only a winner writes its order."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

import marshmallow as ma
import redis
from flask import request

from app import metrics
from app.api.auth import operator_required
from app.api.blueprint import Blueprint
from app.bootstrap import Runtime
from app.errors import Forbidden, InvalidInput, Overloaded, ServiceError, Unauthorized
from app.extension import runtime
from app.http_auth import bearer_token
from app.problems import flatten_errors
from app.schemas.flash_sales import (
    FlashSaleCreateSchema,
    FlashSaleSchema,
    PurchaseResultSchema,
    PurchaseSchema,
)
from app.services import flash_admission, flash_sales

log = logging.getLogger(__name__)

blp = Blueprint("flash_sales", __name__, url_prefix="/api/v1/flash-sales", description="Flash sales")

TOKEN_CACHE_SECONDS = 24 * 3600

# One instance for every attempt, the Flask view's and the fast path's (loading keeps no state).
PURCHASE = PurchaseSchema()


class InvalidPurchase(InvalidInput):
    """PurchaseSchema's refusal of a body, its messages by field name."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("body", "Invalid purchase body.")
        self.errors = errors


@blp.post("")
@operator_required
@blp.arguments(FlashSaleCreateSchema)
@blp.response(201, FlashSaleSchema)
def create_sale(data: dict[str, Any]) -> Any:
    app_state = runtime()
    with app_state.db.uow() as uow:
        fields = ("goods_id", "price_cents", "quantity", "per_user_limit", "starts_at", "ends_at")
        sale = flash_sales.create_sale(uow, flash_sales.NewSale(**{name: data[name] for name in fields}))
    with app_state.db.uow() as uow:
        snapshot = flash_admission.snapshot(uow, sale.id)
    try:
        app_state.flash_gate.load(snapshot)  # type: ignore[arg-type]
    except redis.RedisError:
        log.warning("Redis is down: flash sale %s's gate is built at its first purchase", sale.id)
    return sale


@blp.get("/<sale_id>")
@blp.response(200, FlashSaleSchema)
def get_sale(sale_id: str) -> Any:
    with runtime().db.uow() as uow:
        return flash_sales.get_sale(uow, sale_id)


@blp.post("/<sale_id>/purchase")
@blp.response(202, PurchaseResultSchema)
@blp.doc(
    security=[{"bearerAuth": []}],
    requestBody={"required": True, "content": {"application/json": {"schema": PurchaseSchema}}},
)
def purchase(sale_id: str) -> Any:
    """Documents the endpoint. Requests are served by `app.api.flash_fast` in front of Flask,
    through the same `purchase_from`; this view answers only if that layer is not installed."""
    order_id = purchase_from(
        runtime(), request.headers.get("Authorization", ""), request.get_json(silent=True), sale_id
    )
    return {"order_id": order_id}, {"Location": f"/api/v1/orders/{order_id}"}


def purchase_from(app_state: Runtime, authorization: str, body: Any, sale_id: str) -> str:
    """One purchase attempt: the buyer, the body, the load, then the gate. Counts its outcome."""
    outcome = "invalid"
    try:
        token = _bearer_token(app_state, authorization)
        quantity = _quantity(body)
        if app_state.queue_probe.depth() > app_state.settings.flash_max_queue_depth:
            raise Overloaded("Orders are queued deeper than the workers can drain soon; retry later.")
        try:
            attempt = flash_admission.PurchaseAttempt(token, sale_id, quantity, int(time.time() * 1000))
            order_id = flash_admission.purchase(
                app_state.flash_gate, app_state.db.uow, app_state.engine, attempt
            )
        except (redis.ConnectionError, redis.TimeoutError) as error:  # the gate decides every attempt
            _warn_gate_unreachable(sale_id)
            raise Overloaded("The sale's gate cannot be reached; retry in a moment.") from error
        outcome = "accepted"
        return order_id
    except ServiceError as error:
        outcome = error.code if error.code in metrics.FLASH_OUTCOMES else "invalid"
        raise
    finally:
        metrics.FLASH_PURCHASES.labels(outcome=outcome).inc()


_gate_warned_at = 0.0
GATE_WARNING_EVERY_SECONDS = 10.0


def _warn_gate_unreachable(sale_id: str) -> None:
    """With Redis down every attempt fails alike, thousands a second in a sale: say so (with
    the error, and any SQL error it interrupted) once every few seconds, not once an attempt."""
    global _gate_warned_at
    now = time.monotonic()
    if now - _gate_warned_at >= GATE_WARNING_EVERY_SECONDS:
        _gate_warned_at = now
        log.warning(
            "flash sale %s: the gate's Redis cannot be reached; purchases get 503", sale_id, exc_info=True
        )


def _quantity(body: Any) -> int:
    """The body (parsed JSON, None if there was none) through PurchaseSchema."""
    try:
        quantity: int = PURCHASE.load(body)["quantity"]
    except ma.ValidationError as error:
        raise InvalidPurchase(_purchase_errors(body, error)) from None
    return quantity


def _purchase_errors(body: Any, error: ma.ValidationError) -> dict[str, list[str]]:
    """The schema's refusal keyed as problems.py keys flask-smorest's (a body that is not an
    object under "body"), with two rules this endpoint has always kept: an unknown field is told
    alone, the first by name; and a field keeps its own name, even "" or "_schema" (which
    flatten_errors would call "body"). Applied here, on refusals only: as a schema hook it
    made every load, an accepted purchase's too, some 40 % dearer."""
    messages = error.messages
    if not isinstance(body, dict) or not isinstance(messages, dict):
        return flatten_errors(messages)
    unknown = sorted(set(body) - PURCHASE.load_fields.keys())
    if unknown:
        messages = {unknown[0]: messages[unknown[0]]}
    return {str(name): [str(m) for m in field_messages] for name, field_messages in messages.items()}


def _bearer_token(app_state: Runtime, authorization: str) -> str:
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized("A bearer token is required.")
    if hmac.compare_digest(token.encode(), app_state.settings.admin_token.encode()):
        raise Forbidden("This endpoint is for users; the operator has no account of its own.")
    return token


def cache_token_hash(app_state: Runtime, user_id: str, token_hash: str) -> None:
    """Best effort: without it, the buyer's first purchase attempt checks the token in SQL."""
    try:
        app_state.flash_gate.cache_token(user_id, token_hash, TOKEN_CACHE_SECONDS)
    except redis.RedisError:
        log.warning("could not cache the token hash of %s", user_id)
