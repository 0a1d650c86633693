"""Users, goods and coupons over the API, against PostgreSQL: the happy paths and the auth rules."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import ADMIN, assert_problem, bearer, create_goods, create_user, unique


def test_create_user_returns_token_once_and_user_reads_itself(client: FlaskClient) -> None:
    email = f"{unique('ann')}@example.com"
    response = client.post("/api/v1/users", json={"name": "Ann", "email": email}, headers=ADMIN)
    assert response.status_code == 201
    user = response.get_json()
    assert set(user) >= {"id", "name", "email", "points", "created_at", "token"}
    assert (user["name"], user["email"], user["points"]) == ("Ann", email, 0)
    assert user["created_at"].endswith("Z")

    me = client.get("/api/v1/me", headers=bearer(user["token"]))
    assert me.status_code == 200
    assert me.get_json() == {"id": user["id"], "name": "Ann", "email": email, "points": 0}

    by_operator = client.get(f"/api/v1/users/{user['id']}", headers=ADMIN).get_json()
    assert "token" not in by_operator
    assert by_operator["id"] == user["id"]


def test_token_is_stored_hashed(client: FlaskClient, app: object) -> None:
    from sqlalchemy import select

    from app.extension import runtime
    from app.models.users import User

    user = create_user(client)
    with runtime(app).db.uow() as uow:
        stored = uow.session.scalar(select(User.token_hash).where(User.id == user["id"]))
    assert stored is not None and user["token"] not in stored and len(stored) == 64


def test_duplicate_email_is_a_conflict_whatever_the_case(client: FlaskClient) -> None:
    email = f"{unique('dup')}@example.com"
    assert client.post("/api/v1/users", json={"name": "A", "email": email}, headers=ADMIN).status_code == 201
    again = client.post("/api/v1/users", json={"name": "B", "email": email.upper()}, headers=ADMIN)
    assert_problem(again, 409, "conflict")


def test_goods_lifecycle_and_public_reads(client: FlaskClient) -> None:
    goods = create_goods(client, price_cents=1999, stock=7)
    assert set(goods) >= {
        "id",
        "sku",
        "name",
        "price_cents",
        "stock_available",
        "stock_reserved",
        "stock_sold",
        "created_at",
    }
    assert (goods["stock_available"], goods["stock_reserved"], goods["stock_sold"]) == (7, 0, 0)

    assert client.get(f"/api/v1/goods/{goods['id']}").get_json() == goods
    restocked = client.post(f"/api/v1/goods/{goods['id']}/restock", json={"quantity": 5}, headers=ADMIN)
    assert restocked.status_code == 200
    assert restocked.get_json()["stock_available"] == 12

    dup = client.post(
        "/api/v1/goods",
        json={"sku": goods["sku"], "name": "x", "price_cents": 1, "stock": 0},
        headers=ADMIN,
    )
    assert_problem(dup, 409, "conflict")
    assert_problem(client.get("/api/v1/goods/gds_nope"), 404, "not-found")
    missing = client.post("/api/v1/goods/gds_nope/restock", json={"quantity": 1}, headers=ADMIN)
    assert_problem(missing, 404, "not-found")


def test_goods_list_pages_with_cursor_and_never_clamps_limit(client: FlaskClient) -> None:
    created = [create_goods(client)["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/goods{query}").get_json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    assert client.get("/api/v1/goods").get_json()["next_cursor"] is None
    for bad in ("limit=0", "limit=101", "limit=abc", "limit=1.5", "cursor=%25%25", "cursor=bm90LWFuLWlk"):
        field = bad.split("=")[0]
        assert_problem(client.get(f"/api/v1/goods?{bad}"), 422, "validation", field)


def test_coupons_for_a_user(client: FlaskClient) -> None:
    ann, bob = create_user(client, "Ann"), create_user(client, "Bob")
    response = client.post(
        f"/api/v1/users/{ann['id']}/coupons",
        json={"amount_off_cents": 500, "min_order_cents": 2000, "expires_at": "2099-01-01T08:00:00+08:00"},
        headers=ADMIN,
    )
    assert response.status_code == 201
    coupon = response.get_json()
    assert {k: coupon[k] for k in ("user_id", "amount_off_cents", "min_order_cents", "status")} == {
        "user_id": ann["id"],
        "amount_off_cents": 500,
        "min_order_cents": 2000,
        "status": "AVAILABLE",
    }
    assert coupon["expires_at"] == "2099-01-01T00:00:00Z"

    plain = client.post(f"/api/v1/users/{ann['id']}/coupons", json={"amount_off_cents": 1}, headers=ADMIN)
    assert plain.get_json()["min_order_cents"] == 0 and plain.get_json()["expires_at"] is None
    expired = client.post(
        f"/api/v1/users/{ann['id']}/coupons",
        json={"amount_off_cents": 1, "expires_at": "2001-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert expired.get_json()["status"] == "EXPIRED"

    mine = client.get("/api/v1/me/coupons", headers=bearer(ann["token"])).get_json()
    assert [c["id"] for c in mine["items"]] == [
        coupon["id"],
        plain.get_json()["id"],
        expired.get_json()["id"],
    ]
    assert client.get("/api/v1/me/coupons", headers=bearer(bob["token"])).get_json()["items"] == []

    assert client.get(f"/api/v1/coupons/{coupon['id']}", headers=bearer(ann["token"])).status_code == 200
    assert client.get(f"/api/v1/coupons/{coupon['id']}", headers=ADMIN).status_code == 200
    # Someone else's coupon does not exist, as far as Bob can tell.
    assert_problem(
        client.get(f"/api/v1/coupons/{coupon['id']}", headers=bearer(bob["token"])), 404, "not-found"
    )
    unknown_user = client.post("/api/v1/users/usr_nope/coupons", json={"amount_off_cents": 1}, headers=ADMIN)
    assert_problem(unknown_user, 404, "not-found")


OPERATOR_ENDPOINTS = [
    ("post", "/api/v1/users", {"name": "X", "email": "x@example.com"}),
    ("get", "/api/v1/users/usr_01M88S610N83SY6VPQ23SAANM8", None),
    ("post", "/api/v1/goods", {"sku": "s", "name": "n", "price_cents": 1, "stock": 1}),
    ("post", "/api/v1/goods/gds_01M88S610N83SY6VPQ23SAANM8/restock", {"quantity": 1}),
    ("post", "/api/v1/users/usr_01M88S610N83SY6VPQ23SAANM8/coupons", {"amount_off_cents": 1}),
    ("get", "/api/v1/users/usr_01M88S610N83SY6VPQ23SAANM8/coupons", None),
]
USER_ENDPOINTS = [("get", "/api/v1/me", None), ("get", "/api/v1/me/coupons", None)]


def test_auth_rules(client: FlaskClient) -> None:
    user = create_user(client)
    forged = user["token"].split(".")[0] + ".not-the-secret"
    for method, path, body in OPERATOR_ENDPOINTS + USER_ENDPOINTS:
        call = getattr(client, method)
        for headers in ({}, bearer("nonsense"), bearer(forged), {"Authorization": "Basic abc"}):
            assert_problem(call(path, json=body, headers=headers), 401, "unauthorized")
    for method, path, body in OPERATOR_ENDPOINTS:
        assert_problem(
            getattr(client, method)(path, json=body, headers=bearer(user["token"])), 403, "forbidden"
        )
    for method, path, body in USER_ENDPOINTS:
        assert_problem(getattr(client, method)(path, json=body, headers=ADMIN), 403, "forbidden")
    # Public reads need no token, and a stray token does not break them.
    assert client.get("/api/v1/goods").status_code == 200
    assert client.get("/api/v1/goods", headers=bearer("nonsense")).status_code == 200


def test_a_wrong_method_says_which_are_allowed(client: FlaskClient) -> None:
    response = client.delete("/api/v1/goods")
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
