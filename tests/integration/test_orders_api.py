"""The orders and admin-saga endpoints in-process on PostgreSQL: input, auth, listing, and the
Idempotency-Key rules. (The saga itself runs on real workers in test_order_saga.py.)"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extension import runtime
from app.models.orders import IdempotencyKey, Order
from app.models.outbox import OutboxMessage
from tests.support.api import ADMIN, assert_problem, bearer, create_goods, create_user


@pytest.fixture
def shop(client: FlaskClient) -> dict[str, Any]:
    buyer = create_user(client)
    return {
        "buyer": buyer,
        "other": create_user(client),
        "tea": create_goods(client, price_cents=1200),
        "cup": create_goods(client, price_cents=300),
        "coupon": client.post(
            f"/api/v1/users/{buyer['id']}/coupons", json={"amount_off_cents": 5000}, headers=ADMIN
        ).get_json(),
    }


def _place(client: FlaskClient, token: str, body: Any, **headers: str) -> Any:
    return client.post("/api/v1/orders", json=body, headers={**bearer(token), **headers})


def _count(app: Flask, model: Any) -> int:
    with runtime(app).db.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def test_placing_records_the_order_its_saga_and_one_outbox_message(
    client: FlaskClient, app: Flask, shop: dict[str, Any]
) -> None:
    body = {
        "items": [
            {"goods_id": shop["tea"]["id"], "quantity": 2},
            {"goods_id": shop["cup"]["id"], "quantity": 1},
        ],
        "coupon_id": shop["coupon"]["id"],
    }
    response = _place(client, shop["buyer"]["token"], body)
    assert response.status_code == 202
    order = response.get_json()
    assert set(order) >= {
        "id",
        "user_id",
        "status",
        "items",
        "total_cents",
        "discount_cents",
        "payable_cents",
        "coupon_id",
        "flash_sale_id",
        "created_at",
        "updated_at",
        "payment_deadline",
        "cancel_reason",
        "payment",
        "saga",
    }
    # The discount is capped at the total: min(5000, 2700).
    assert (order["total_cents"], order["discount_cents"], order["payable_cents"]) == (2700, 2700, 0)
    assert order["saga"]["status"] == "RUNNING" and order["flash_sale_id"] is None
    assert _count(app, OutboxMessage) == 1
    assert client.get(response.headers["Location"], headers=bearer(shop["buyer"]["token"])).status_code == 200


BAD_ORDERS: list[tuple[str, Any]] = [
    ("items", None),
    ("items", []),
    ("items", "x"),
    ("items", [{"goods_id": "g", "quantity": 1}] * 21),
    ("items.0.quantity", [{"goods_id": "G", "quantity": 0}]),
    ("items.0.quantity", [{"goods_id": "G", "quantity": 101}]),
    ("items.0.quantity", [{"goods_id": "G", "quantity": "1"}]),
    ("items.0.quantity", [{"goods_id": "G", "quantity": 1.5}]),
    ("items.0.quantity", [{"goods_id": "G", "quantity": 10**30}]),
    ("items.0.quantity", [{"goods_id": "G"}]),
    ("items.0.goods_id", [{"goods_id": 5, "quantity": 1}]),
    ("items.0.goods_id", [{"goods_id": "", "quantity": 1}]),
    ("items.0.extra", [{"goods_id": "G", "quantity": 1, "extra": True}]),
    ("coupon_id", 17),
]


@pytest.mark.parametrize(("field", "items"), BAD_ORDERS, ids=[f"{f}-{v!r:.25}" for f, v in BAD_ORDERS])
def test_bad_orders_are_422_naming_the_field(
    client: FlaskClient, app: Flask, shop: dict[str, Any], field: str, items: Any
) -> None:
    body: dict[str, Any] = {"items": [{"goods_id": shop["tea"]["id"], "quantity": 1}]}
    if field == "coupon_id":
        body["coupon_id"] = items
    else:
        body["items"] = items
    assert_problem(_place(client, shop["buyer"]["token"], body), 422, "validation", field)
    assert _count(app, Order) == 0


def test_unknown_goods_duplicate_lines_and_someone_elses_coupon(
    client: FlaskClient, app: Flask, shop: dict[str, Any]
) -> None:
    token = shop["buyer"]["token"]
    tea = shop["tea"]["id"]
    assert_problem(
        _place(
            client,
            token,
            {
                "items": [
                    {"goods_id": tea, "quantity": 1},
                    {"goods_id": "gds_01M88S610N83SY6VPQ23SAANM8", "quantity": 1},
                ]
            },
        ),
        422,
        "validation",
        "items.1.goods_id",
    )
    assert_problem(
        _place(client, token, {"items": [{"goods_id": tea, "quantity": 1}] * 2}), 422, "validation", "items"
    )
    theirs = _place(
        client,
        shop["other"]["token"],
        {"items": [{"goods_id": tea, "quantity": 1}], "coupon_id": shop["coupon"]["id"]},
    )
    assert_problem(theirs, 422, "validation", "coupon_id")
    assert_problem(
        _place(client, token, {"items": [{"goods_id": tea, "quantity": 1}], "coupon_id": "cpn_nope"}),
        422,
        "validation",
        "coupon_id",
    )
    assert _count(app, Order) == 0 and _count(app, OutboxMessage) == 0
    assert_problem(client.post("/api/v1/orders", json={"items": []}), 401, "unauthorized")
    assert_problem(client.post("/api/v1/orders", json={"items": []}, headers=ADMIN), 403, "forbidden")


def test_reading_and_listing_orders(client: FlaskClient, shop: dict[str, Any]) -> None:
    buyer, other = shop["buyer"], shop["other"]
    line = {"items": [{"goods_id": shop["tea"]["id"], "quantity": 1}]}
    mine = [_place(client, buyer["token"], line).get_json()["id"] for _ in range(3)]
    theirs = _place(client, other["token"], line).get_json()["id"]

    assert client.get(f"/api/v1/orders/{mine[0]}", headers=bearer(buyer["token"])).status_code == 200
    assert client.get(f"/api/v1/orders/{mine[0]}", headers=ADMIN).status_code == 200
    assert_problem(client.get(f"/api/v1/orders/{mine[0]}", headers=bearer(other["token"])), 404, "not-found")
    assert_problem(client.get(f"/api/v1/orders/{mine[0]}"), 401, "unauthorized")

    page = client.get("/api/v1/orders?limit=2", headers=bearer(buyer["token"])).get_json()
    rest = client.get(
        f"/api/v1/orders?cursor={page['next_cursor']}", headers=bearer(buyer["token"])
    ).get_json()
    assert [o["id"] for o in page["items"] + rest["items"]] == mine
    everyone = client.get("/api/v1/orders", headers=ADMIN).get_json()["items"]
    assert {o["id"] for o in everyone} == {*mine, theirs}
    only_other = client.get(f"/api/v1/orders?user_id={other['id']}", headers=ADMIN).get_json()["items"]
    assert [o["id"] for o in only_other] == [theirs]
    # A user's ?user_id= cannot widen the view to someone else's orders.
    sneaky = client.get(f"/api/v1/orders?user_id={other['id']}", headers=bearer(buyer["token"])).get_json()
    assert {o["id"] for o in sneaky["items"]} == set(mine)
    assert client.get("/api/v1/orders?status=PENDING", headers=ADMIN).get_json()["items"]
    assert client.get("/api/v1/orders?status=CONFIRMED", headers=ADMIN).get_json()["items"] == []
    assert_problem(client.get("/api/v1/orders?status=DONE", headers=ADMIN), 422, "validation", "status")


def test_idempotency_key_replays_the_same_order(
    client: FlaskClient, app: Flask, shop: dict[str, Any]
) -> None:
    token = shop["buyer"]["token"]
    body = {"items": [{"goods_id": shop["tea"]["id"], "quantity": 1}]}
    first = _place(client, token, body, **{"Idempotency-Key": "k-1"})
    again = _place(client, token, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    other_body = {"items": [{"goods_id": shop["tea"]["id"], "quantity": 2}]}
    assert_problem(
        _place(client, token, other_body, **{"Idempotency-Key": "k-1"}), 422, "idempotency-key-reuse"
    )
    # Keys belong to their user: another buyer's identical key is a different request.
    assert _place(client, shop["other"]["token"], body, **{"Idempotency-Key": "k-1"}).status_code == 202
    assert _count(app, Order) == 2
    for bad in ("", "x" * 256, "tab\tkey"):
        assert_problem(
            _place(client, token, body, **{"Idempotency-Key": bad}), 422, "validation", "Idempotency-Key"
        )


def test_a_key_of_a_failed_request_can_be_used_again(
    client: FlaskClient, app: Flask, shop: dict[str, Any]
) -> None:
    token = shop["buyer"]["token"]
    bad = {"items": [{"goods_id": "gds_01M88S610N83SY6VPQ23SAANM8", "quantity": 1}]}
    assert _place(client, token, bad, **{"Idempotency-Key": "retry-me"}).status_code == 422
    assert _count(app, IdempotencyKey) == 0
    good = {"items": [{"goods_id": shop["tea"]["id"], "quantity": 1}]}
    assert _place(client, token, good, **{"Idempotency-Key": "retry-me"}).status_code == 202


def test_concurrent_requests_with_one_key_make_at_most_one_order(app: Flask, shop: dict[str, Any]) -> None:
    body = {"items": [{"goods_id": shop["tea"]["id"], "quantity": 1}]}
    barrier = threading.Barrier(12)
    statuses: list[int] = []

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        response = _place(client, shop["buyer"]["token"], body, **{"Idempotency-Key": "same"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {202, 409} and 202 in statuses
    assert _count(app, Order) == 1


def test_admin_saga_endpoints(client: FlaskClient, shop: dict[str, Any]) -> None:
    order = _place(
        client, shop["buyer"]["token"], {"items": [{"goods_id": shop["tea"]["id"], "quantity": 1}]}
    )
    saga_id = order.get_json()["saga"]["id"]
    saga = client.get(f"/api/v1/admin/sagas/{saga_id}", headers=ADMIN).get_json()
    assert set(saga) >= {"id", "type", "order_id", "status", "created_at", "updated_at", "steps"}
    assert saga["steps"][0] == {
        **saga["steps"][0],
        "name": "reserve_stock",
        "kind": "action",
        "status": "PENDING",
        "attempts": 0,
    }
    assert set(saga["steps"][0]) >= {
        "name",
        "kind",
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "error",
    }
    listed = client.get("/api/v1/admin/sagas?status=RUNNING", headers=ADMIN).get_json()["items"]
    assert [s["id"] for s in listed] == [saga_id]
    assert client.get("/api/v1/admin/sagas?status=FAILED", headers=ADMIN).get_json()["items"] == []
    assert_problem(client.get("/api/v1/admin/sagas?status=nope", headers=ADMIN), 422, "validation", "status")
    assert_problem(client.post(f"/api/v1/admin/sagas/{saga_id}/retry", headers=ADMIN), 409, "conflict")
    assert_problem(
        client.get("/api/v1/admin/sagas/sga_01M88S610N83SY6VPQ23SAANM8", headers=ADMIN), 404, "not-found"
    )
    assert_problem(
        client.get(f"/api/v1/admin/sagas/{saga_id}", headers=bearer(shop["buyer"]["token"])), 403, "forbidden"
    )


@pytest.mark.parametrize("provider", ["stripe", "paypal", 1, None, ""], ids=repr)
def test_a_payment_provider_that_is_not_enabled_is_422_naming_it(
    client: FlaskClient, app: Flask, shop: dict[str, Any], provider: Any
) -> None:
    """This deployment enables only the sandbox: Stripe is a provider, but not one of its own."""
    body = {"items": [{"goods_id": shop["tea"]["id"], "quantity": 1}], "payment_provider": provider}
    response = _place(client, shop["buyer"]["token"], body, **{"Idempotency-Key": "k-provider"})
    assert_problem(response, 422, "validation", "payment_provider")
    assert _count(app, Order) == 0 and _count(app, IdempotencyKey) == 0


def test_the_chosen_provider_is_kept_with_the_order(
    client: FlaskClient, app: Flask, shop: dict[str, Any]
) -> None:
    lines = [{"goods_id": shop["tea"]["id"], "quantity": 1}]
    chosen = _place(client, shop["buyer"]["token"], {"items": lines, "payment_provider": "sandbox"})
    default = _place(client, shop["buyer"]["token"], {"items": lines})
    assert chosen.status_code == default.status_code == 202
    with runtime(app).db.uow() as uow:
        kept = dict(uow.session.execute(select(Order.id, Order.payment_provider)).all())
    assert kept == {chosen.get_json()["id"]: "sandbox", default.get_json()["id"]: "sandbox"}
