"""Orders: place (202 at once), read, list, cancel."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import jsonify, request

from app.api.auth import current_principal, current_user_id, login_required, user_required
from app.api.blueprint import Blueprint
from app.errors import InvalidInput
from app.extension import runtime
from app.schemas.orders import (
    OrderCreateSchema,
    OrderPageSchema,
    OrderQuerySchema,
    OrderSchema,
    page_body,
    view_body,
)
from app.services import order_reads, orders

blp = Blueprint("orders", __name__, url_prefix="/api/v1/orders", description="Orders and their sagas")

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(" " <= c <= "~" for c in key):
        raise InvalidInput(IDEMPOTENCY_HEADER, "Must be 1..255 printable ASCII characters.")
    return key


def _request_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@blp.post("")
@user_required
@blp.arguments(OrderCreateSchema)
@blp.response(202, OrderSchema)
def place_order(data: dict[str, Any]) -> Any:
    key = _idempotency_key()
    app_state = runtime()
    new = orders.NewOrder(
        current_user_id(),
        [orders.Line(item["goods_id"], item["quantity"]) for item in data["items"]],
        data["coupon_id"],
        orders.payment_provider_for(data.get("payment_provider"), app_state.settings.payment_providers),
    )
    placed = orders.place_order(
        app_state.db.uow,
        app_state.engine,
        new,
        idempotency=orders.Idempotency(key, _request_hash(data)) if key is not None else None,
    )
    headers = {"Location": f"/api/v1/orders/{placed.order.id}"}
    if placed.replayed:
        headers["Idempotent-Replayed"] = "true"
    return placed.order, headers


@blp.get("/<order_id>")
@login_required
@blp.response(200, OrderSchema)
def get_order(order_id: str) -> Any:
    order = order_reads.order(runtime().db, order_id, owner_id=current_principal().user_id)
    return jsonify(view_body(order))  # a Response: flask-smorest does not dump it again


@blp.get("")
@login_required
@blp.arguments(OrderQuerySchema, location="query")
@blp.response(200, OrderPageSchema)
def list_orders(query: dict[str, Any]) -> Any:
    user_id = current_principal().user_id or query["user_id"]
    page = order_reads.orders(runtime().db, user_id, query["status"], query["limit"], query["cursor"])
    return jsonify(page_body(page))


@blp.post("/<order_id>/cancel")
@user_required
@blp.response(202, OrderSchema)
@blp.alt_response(200, schema=OrderSchema, description="The order was already cancelled: unchanged.")
def cancel_order(order_id: str) -> Any:
    app_state = runtime()
    order, changed = orders.cancel_order(app_state.db.uow, app_state.engine, order_id, current_user_id())
    if not changed and order.status != "CANCELLING":
        return order, 200
    return order
