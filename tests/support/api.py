"""Small helpers for talking to the API in tests."""

from __future__ import annotations

import secrets
from typing import Any

from flask.testing import FlaskClient

from tests.support.env import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def create_user(client: FlaskClient, name: str = "Buyer") -> dict[str, Any]:
    response = client.post(
        "/api/v1/users", json={"name": name, "email": f"{unique('u')}@example.com"}, headers=ADMIN
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def create_goods(client: FlaskClient, price_cents: int = 1000, stock: int = 10) -> dict[str, Any]:
    response = client.post(
        "/api/v1/goods",
        json={"sku": unique("sku"), "name": "Green tea", "price_cents": price_cents, "stock": stock},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def assert_problem(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    assert body["status"] == status and body["code"] == code
    if field is not None:
        assert field in body.get("errors", {}), body
    return body
