"""The API's error format and auth, quickly, on SQLite (the PostgreSQL suite covers every endpoint)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import ADMIN, assert_problem, bearer, create_goods, create_user


def test_problem_json_for_validation_auth_and_not_found(client: FlaskClient) -> None:
    body = assert_problem(
        client.post("/api/v1/goods", json={"sku": 1}, headers=ADMIN), 422, "validation", "sku"
    )
    assert set(body["errors"]) >= {"sku", "name", "price_cents", "stock"}
    assert_problem(client.post("/api/v1/goods", json={}), 401, "unauthorized")
    assert_problem(client.get("/api/v1/goods/gds_01M88S610N83SY6VPQ23SAANM8"), 404, "not-found")
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")


def test_a_user_reads_itself_and_not_operator_endpoints(client: FlaskClient) -> None:
    user = create_user(client)
    assert client.get("/api/v1/me", headers=bearer(user["token"])).get_json()["id"] == user["id"]
    assert_problem(client.post("/api/v1/goods", json={}, headers=bearer(user["token"])), 403, "forbidden")


def test_restock_adds_to_available(client: FlaskClient) -> None:
    goods = create_goods(client, stock=2)
    response = client.post(f"/api/v1/goods/{goods['id']}/restock", json={"quantity": 3}, headers=ADMIN)
    assert response.get_json()["stock_available"] == 5
