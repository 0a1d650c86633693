"""A buyer can never read, cancel or use another buyer's order, coupon, saga or account: every
operation of the OpenAPI document, and every page of the saga console, is tried by one buyer
with the other's ids, and what the other holds is the same afterwards.

The sweep is driven by the document: an operation that the table below does not name fails the
test, so a new endpoint is swept from the day it is added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from tests.support.api import ADMIN, bearer, create_goods, create_user
from tests.support.databases import truncate_all
from tests.support.env import settings_for
from tests.support.provider_env import all_providers_env

PUBLIC = "public"  # anyone may read it: it must hold none of the victim's ids
OWN = "own"  # answers about the intruder alone: it must hold none of the victim's ids
REFUSED = (401, 403, 404)

# Per operation: what the intruder may be answered, and the body sent.
EXPECTED: dict[str, tuple[Any, Any]] = {
    "POST /api/v1/users": (REFUSED, {"name": "X", "email": "x@example.com"}),
    "GET /api/v1/users/{user_id}": (REFUSED, None),
    "GET /api/v1/me": (OWN, None),
    "POST /api/v1/users/{user_id}/coupons": (REFUSED, {"amount_off_cents": 100_000}),
    "GET /api/v1/users/{user_id}/coupons": (REFUSED, None),
    "GET /api/v1/me/coupons": (OWN, None),
    "POST /api/v1/goods": (REFUSED, {"sku": "x-1", "name": "X", "price_cents": 1, "stock": 1}),
    "GET /api/v1/goods": (PUBLIC, None),
    "GET /api/v1/goods/{goods_id}": (PUBLIC, None),
    "POST /api/v1/goods/{goods_id}/restock": (REFUSED, {"quantity": 5}),
    "GET /api/v1/coupons/{coupon_id}": (REFUSED, None),
    # The victim's coupon on the intruder's order: refused as not theirs.
    "POST /api/v1/orders": (
        (422,),
        {"items": [{"goods_id": "{goods_id}", "quantity": 1}], "coupon_id": "{coupon_id}"},
    ),
    "GET /api/v1/orders": (OWN, None),
    "GET /api/v1/orders/{order_id}": (REFUSED, None),
    "POST /api/v1/orders/{order_id}/cancel": (REFUSED, None),
    # Webhooks answer to the provider's signature, never to a buyer's token.
    "POST /api/v1/payments/webhooks/sandbox": ((400,), {"id": "evt_x", "type": "payment.succeeded"}),
    "POST /api/v1/payments/webhooks/alipay": ((400, 422), {"out_trade_no": "{order_id}"}),
    "POST /api/v1/payments/webhooks/wechatpay": ((400, 401, 422), {"id": "evt_x"}),
    "POST /api/v1/payments/webhooks/stripe": (
        (400, 422),
        {"id": "evt_x", "type": "checkout.session.completed"},
    ),
    "POST /api/v1/flash-sales": (REFUSED, {"goods_id": "{goods_id}", "price_cents": 1, "quantity": 1}),
    "GET /api/v1/flash-sales/{sale_id}": (PUBLIC, None),
    "POST /api/v1/flash-sales/{sale_id}/purchase": (OWN, {"quantity": 1}),  # a purchase of their own
    "GET /api/v1/admin/sagas": (REFUSED, None),
    "GET /api/v1/admin/sagas/{saga_id}": (REFUSED, None),
    "POST /api/v1/admin/sagas/{saga_id}/retry": (REFUSED, None),
}
CONSOLE = ["GET /admin/sagas", "GET /admin/sagas/{saga_id}", "POST /admin/sagas/{saga_id}/retry"]


def _victim(client: FlaskClient) -> tuple[dict[str, str], dict[str, Any]]:
    """The victim's account, a coupon of theirs and an order of theirs (with another coupon)."""
    victim = create_user(client, "Victim")
    goods = create_goods(client, stock=50)
    spare = client.post(
        f"/api/v1/users/{victim['id']}/coupons", json={"amount_off_cents": 200}, headers=ADMIN
    )
    used = client.post(f"/api/v1/users/{victim['id']}/coupons", json={"amount_off_cents": 300}, headers=ADMIN)
    body = {"items": [{"goods_id": goods["id"], "quantity": 2}], "coupon_id": used.get_json()["id"]}
    order = client.post("/api/v1/orders", json=body, headers=bearer(victim["token"])).get_json()
    sale = client.post(
        "/api/v1/flash-sales",
        json={
            "goods_id": goods["id"],
            "price_cents": 100,
            "quantity": 5,
            "per_user_limit": 1,
            "starts_at": "2020-01-01T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z",
        },
        headers=ADMIN,
    ).get_json()
    ids = {
        "user_id": victim["id"],
        "coupon_id": spare.get_json()["id"],
        "order_id": order["id"],
        "saga_id": order["saga"]["id"],
        "goods_id": goods["id"],
        "sale_id": sale["id"],
    }
    return ids, victim


def _holdings(client: FlaskClient, ids: dict[str, str]) -> list[Any]:
    """What the victim holds, as the operator sees it."""
    paths = [
        f"/api/v1/users/{ids['user_id']}",
        f"/api/v1/users/{ids['user_id']}/coupons",
        f"/api/v1/orders/{ids['order_id']}",
        f"/api/v1/orders?user_id={ids['user_id']}",
        f"/api/v1/admin/sagas/{ids['saga_id']}",
    ]
    return [client.get(path, headers=ADMIN).get_json() for path in paths]


def _fill(template: Any, ids: dict[str, str]) -> Any:
    text = json.dumps(template)
    for name, value in ids.items():
        text = text.replace("{" + name + "}", value)
    return json.loads(text)


@pytest.fixture
def client(pg_url: str, redis_url: str) -> Iterator[FlaskClient]:
    """The app with every payment provider enabled, so that each webhook is its real one."""
    app = create_app(settings_for(pg_url, redis_url, **all_providers_env()))
    app.extensions["ordersaga"].db.after_commit = None  # no worker here: messages stay in the outbox
    yield app.test_client()
    app.extensions["ordersaga"].db.dispose()
    truncate_all(pg_url)


def test_a_buyer_can_reach_nothing_of_another_buyer(client: FlaskClient) -> None:
    ids, victim = _victim(client)
    private = [ids["user_id"], ids["coupon_id"], ids["order_id"], ids["saga_id"], victim["email"]]
    intruder = bearer(create_user(client, "Intruder")["token"])
    before = _holdings(client, ids)

    document = client.get("/api/openapi.json").get_json()["paths"]
    operations = [
        f"{method.upper()} {path}"
        for path, described in document.items()
        for method in described
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert set(operations) == set(EXPECTED), "the sweep must name every operation of the document"

    answered: dict[str, int] = {}
    for operation in [*operations, *CONSOLE]:
        method, path = operation.split(" ", 1)
        expected, body = EXPECTED.get(operation, (REFUSED, None))
        unknown = set(re.findall(r"{(\w+)}", path)) - set(ids)
        assert not unknown, f"{operation}: no id of the victim for {unknown}"
        url = _fill(path, ids)
        response = client.open(
            url, method=method, json=_fill(body, ids) if body is not None else None, headers=intruder
        )
        answered[operation] = response.status_code
        shown = response.get_data(as_text=True)
        if expected in (PUBLIC, OWN):
            assert response.status_code < 500, (operation, shown)
            leaked = [value for value in private if value in shown]
            assert not leaked, f"{operation} showed the victim's {leaked}"
        else:
            refused = response.status_code in expected or (
                operation in CONSOLE and response.status_code in (302, 303)  # sent to the login page
            )
            assert refused, (operation, response.status_code, shown[:300])

    # The operator's filter by user, asked by a buyer, still shows the buyer's own orders only.
    sneaky = client.get(f"/api/v1/orders?user_id={ids['user_id']}", headers=intruder)
    assert ids["order_id"] not in sneaky.get_data(as_text=True), sneaky.get_json()
    assert _holdings(client, ids) == before, answered  # nothing of the victim's moved
