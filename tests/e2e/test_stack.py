"""Goods, users, problem answers and the operations endpoints, over real HTTP."""

from __future__ import annotations

from tests.e2e.conftest import Stack
from tests.support.api import ADMIN, bearer, unique


def test_catalog_and_accounts_over_http(stack: Stack) -> None:
    http = stack.http
    goods = http.post(
        stack.url("/api/v1/goods"),
        json={"sku": unique("e2e"), "name": "Tea", "price_cents": 990, "stock": 3},
        headers={**ADMIN, "X-Request-ID": "e2e-create-goods"},
        timeout=10,
    )
    assert goods.status_code == 201
    assert goods.headers["X-Request-ID"] == "e2e-create-goods"
    listed = http.get(stack.url("/api/v1/goods"), timeout=10).json()
    assert goods.json()["id"] in [item["id"] for item in listed["items"]]

    user = http.post(
        stack.url("/api/v1/users"),
        json={"name": "Eve", "email": f"{unique('eve')}@example.com"},
        headers=ADMIN,
        timeout=10,
    ).json()
    me = http.get(stack.url("/api/v1/me"), headers=bearer(user["token"]), timeout=10)
    assert me.status_code == 200 and me.json()["id"] == user["id"]

    bad = http.post(
        stack.url("/api/v1/goods"),
        data="{",
        headers={**ADMIN, "Content-Type": "application/json"},
        timeout=10,
    )
    assert bad.status_code == 422
    assert bad.headers["Content-Type"].startswith("application/problem+json")
    assert "request_id=e2e-create-goods" in stack.api.log()


def test_operations_endpoints_over_http(stack: Stack) -> None:
    assert stack.http.get(stack.url("/healthz"), timeout=10).status_code == 200
    metrics = stack.http.get(stack.url("/metrics"), timeout=10)
    assert metrics.status_code == 200 and "ordersaga_queue_depth" in metrics.text
    assert stack.http.get(stack.url("/api/openapi.json"), timeout=10).json()["paths"]
    assert "swagger" in stack.http.get(stack.url("/api/docs"), timeout=10).text.lower()
