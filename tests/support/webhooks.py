"""Signed sandbox webhooks, as the provider would send them."""

from __future__ import annotations

import json
import time
from typing import Any

from app.services.webhooks import expected_signature
from tests.support.env import WEBHOOK_SECRET

URL = "/api/v1/payments/webhooks/sandbox"


def signed(body: Any, secret: str = WEBHOOK_SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    timestamp = str(int(at if at is not None else time.time()))
    header = f"t={timestamp},v1={expected_signature(secret, timestamp, raw)}"
    return raw, {"Sandbox-Signature": header, "Content-Type": "application/json"}


def event(
    payment: dict[str, Any], kind: str = "payment.succeeded", event_id: str = "evt_1", **data: Any
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "created": int(time.time()),
        "data": {
            "payment_id": payment["provider_payment_id"],
            "amount_cents": payment["amount_cents"],
            "currency": "CNY",
            **data,
        },
    }
