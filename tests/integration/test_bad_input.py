"""A table of bad input per endpoint: every row is a 4xx problem+json naming the field, never a
500, and nothing is half-written."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extension import runtime
from app.models.coupons import Coupon
from app.models.goods import Goods
from app.models.users import User
from tests.support.api import ADMIN, assert_problem, create_goods, create_user

GOOD_BODIES: dict[str, dict[str, Any]] = {
    "users": {"name": "Ann", "email": "ann@example.com"},
    "goods": {"sku": "SKU-1", "name": "Tea", "price_cents": 100, "stock": 5},
    "restock": {"quantity": 3},
    "coupons": {"amount_off_cents": 100, "min_order_cents": 0, "expires_at": "2099-01-01T00:00:00Z"},
}

# (field, bad value): wrong types, huge numbers, zero and negative values, bounds.
BAD_VALUES: dict[str, list[tuple[str, Any]]] = {
    "users": [
        ("name", None),
        ("name", 1),
        ("name", ""),
        ("name", "x" * 201),
        ("name", ["a"]),
        ("name", "a\x00b"),
        ("email", "a\x00@example.com"),
        ("email", "not-an-email"),
        ("email", 5),
        ("email", "a" * 250 + "@example.com"),
        ("email", None),
    ],
    "goods": [
        ("sku", ""),
        ("sku", "\x00"),
        ("sku", "s" * 65),
        ("sku", 12),
        ("name", ""),
        ("name", {"a": 1}),
        ("price_cents", "100"),
        ("price_cents", 1.5),
        ("price_cents", 0),
        ("price_cents", -1),
        ("price_cents", 10**30),
        ("price_cents", 10**12 + 1),
        ("price_cents", True),
        ("price_cents", None),
        ("stock", -1),
        ("stock", 10**9 + 1),
        ("stock", "5"),
        ("stock", 2.0),
        ("stock", 10**30),
    ],
    "restock": [
        ("quantity", 0),
        ("quantity", -5),
        ("quantity", 10**30),
        ("quantity", "1"),
        ("quantity", 1.5),
        ("quantity", False),
        ("quantity", None),
        ("quantity", 10**9 + 1),
    ],
    "coupons": [
        ("amount_off_cents", 0),
        ("amount_off_cents", -1),
        ("amount_off_cents", "5"),
        ("amount_off_cents", 10**30),
        ("amount_off_cents", 2.5),
        ("min_order_cents", -1),
        ("min_order_cents", 10**13),
        ("min_order_cents", "0"),
        ("expires_at", "tomorrow"),
        ("expires_at", "2099-01-01T00:00:00"),
        ("expires_at", 123),
        ("expires_at", "2099-13-01T00:00:00Z"),
    ],
}
REQUIRED: dict[str, list[str]] = {
    "users": ["name", "email"],
    "goods": ["sku", "name", "price_cents", "stock"],
    "restock": ["quantity"],
    "coupons": ["amount_off_cents"],
}


def _path(client: FlaskClient, endpoint: str) -> str:
    if endpoint == "restock":
        return f"/api/v1/goods/{create_goods(client)['id']}/restock"
    if endpoint == "coupons":
        return f"/api/v1/users/{create_user(client)['id']}/coupons"
    return f"/api/v1/{endpoint}"


def _counts(app: Any) -> tuple[int, int, int, int]:
    with runtime(app).db.uow() as uow:
        session = uow.session
        stock = session.scalar(select(func.coalesce(func.sum(Goods.stock_available), 0)))
        return (
            session.scalar(select(func.count()).select_from(User)) or 0,
            session.scalar(select(func.count()).select_from(Goods)) or 0,
            session.scalar(select(func.count()).select_from(Coupon)) or 0,
            int(stock or 0),
        )


def _rows() -> list[Any]:
    rows = []
    for endpoint, bad in BAD_VALUES.items():
        for field, value in bad:
            rows.append(pytest.param(endpoint, field, value, id=f"{endpoint}-{field}-{value!r:.20}"))
    return rows


@pytest.mark.parametrize(("endpoint", "field", "value"), _rows())
def test_bad_field_value(client: FlaskClient, app: Any, endpoint: str, field: str, value: Any) -> None:
    path = _path(client, endpoint)
    before = _counts(app)
    body = {**GOOD_BODIES[endpoint], field: value}
    assert_problem(client.post(path, json=body, headers=ADMIN), 422, "validation", field)
    assert _counts(app) == before


@pytest.mark.parametrize("endpoint", list(GOOD_BODIES))
def test_missing_and_unknown_fields_and_malformed_bodies(
    client: FlaskClient, app: Any, endpoint: str
) -> None:
    path = _path(client, endpoint)
    before = _counts(app)
    for field in REQUIRED[endpoint]:
        body = {k: v for k, v in GOOD_BODIES[endpoint].items() if k != field}
        assert_problem(client.post(path, json=body, headers=ADMIN), 422, "validation", field)
    unknown = {**GOOD_BODIES[endpoint], "surprise": 1}
    assert_problem(client.post(path, json=unknown, headers=ADMIN), 422, "validation", "surprise")
    for raw in ("{not json", "", "[1, 2]", '"text"', "null", "1e999999", "[" * 5000 + "]" * 5000):
        response = client.post(path, data=raw, headers={**ADMIN, "Content-Type": "application/json"})
        assert_problem(response, 422, "validation")
        assert response.get_json()["errors"], raw[:20]
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        response = client.post(path, data="a=1", headers={**ADMIN, "Content-Type": content_type})
        assert_problem(response, 422, "validation", "body")
    assert _counts(app) == before


def test_oversized_body_is_refused(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/goods",
        data='{"name": "' + "x" * (2 * 1024 * 1024) + '"}',
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/goods/" + "x" * 5000, "/api/v1/goods/%00", "/api/v1/users/%F0%9F%98%80", "/api/v1/coupons/'--"],
)
def test_odd_ids_are_not_found(client: FlaskClient, path: str) -> None:
    headers = ADMIN
    response = client.get(path, headers=headers)
    assert_problem(response, 404, "not-found")
