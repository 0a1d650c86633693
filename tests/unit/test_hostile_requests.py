"""Hostile requests that must not be a 500, and the contract's formats for times and names.

Each case stands for a class: digits that are not ASCII, a signature that is not ASCII, integer
literals Python refuses to convert, and times whose UTC instant falls off the calendar.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from app.schemas.common import Timestamp
from app.services.webhooks import expected_signature, verify
from app.timeutil import rfc3339
from tests.support.api import ADMIN, assert_problem, bearer, create_goods, create_user
from tests.support.env import WEBHOOK_SECRET
from tests.support.webhooks import URL

RFC3339_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")
HUGE_INTEGER = "9" * 5000  # past Python's 4,300-digit limit on converting a literal


def _post_raw(client: FlaskClient, path: str, raw: str, headers: dict[str, str]) -> Any:
    return client.post(path, data=raw, headers={**headers, "Content-Type": "application/json"})


# The webhook's signature header: checked before anything else, so it needs no credentials.


@pytest.mark.parametrize(
    "header",
    [
        "t=\xb2,v1=00",  # "²": str.isdigit() says yes, int() says no
        "t=\u0663\u0664,v1=00",  # Arabic-Indic digits
        "t={now},v1=\xe9",  # compare_digest refuses a str that is not ASCII
        "t={now},v1=" + "\xe9" * 64,
        "t={now},v1=" + "\u0661" * 64,
    ],
)
def test_a_signature_that_is_not_ascii_is_invalid_not_a_500(client: FlaskClient, header: str) -> None:
    header = header.replace("{now}", str(int(time.time())))
    response = client.post(
        URL, data=b"{}", headers={"Sandbox-Signature": header, "Content-Type": "application/json"}
    )
    assert_problem(response, 400, "invalid-signature")
    assert not verify(WEBHOOK_SECRET, header, b"{}", time.time())


def test_a_valid_signature_still_verifies() -> None:
    now = int(time.time())
    good = expected_signature(WEBHOOK_SECRET, str(now), b"{}")
    assert verify(WEBHOOK_SECRET, f"t={now},v1=\xe9,v1={good}", b"{}", now)


# Integer literals too long for int().


def test_a_huge_integer_literal_is_a_422_on_every_json_endpoint(client: FlaskClient) -> None:
    user = create_user(client)
    goods = create_goods(client)
    cases = [
        ("/api/v1/goods", ADMIN, f'{{"sku": "A", "name": "B", "price_cents": {HUGE_INTEGER}, "stock": 1}}'),
        ("/api/v1/users", ADMIN, f'{{"name": "A", "email": "a@example.com", "x": {HUGE_INTEGER}}}'),
        (f"/api/v1/goods/{goods['id']}/restock", ADMIN, f'{{"quantity": -{HUGE_INTEGER}}}'),
        (
            "/api/v1/orders",
            bearer(user["token"]),
            f'{{"items": [{{"goods_id": "{goods["id"]}", "quantity": {HUGE_INTEGER}}}]}}',
        ),
        ("/api/v1/flash-sales", ADMIN, f"[{HUGE_INTEGER}]"),
    ]
    for path, headers, raw in cases:
        body = assert_problem(_post_raw(client, path, raw, headers), 422, "validation")
        assert body["errors"], path


# Times at the calendar's edge, and the shapes of ISO 8601 that are not RFC 3339.

OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+23:59"]
NOT_RFC3339 = [
    "2026-W49-3T10:00:00Z",  # a week date
    "20261202T100000Z",  # the basic format
    "2026-336T10:00:00Z",  # an ordinal date
    "2026-12-02T10:00:00",  # no offset
    "2026-12-02T10:00Z",  # no seconds
    "2026-12-02",
    "2026-12-02T10:00:00+0100",
    "2026-12-02T10:00:00+24:00",
    "2026-12-02T10:60:00Z",
    "\uff12026-12-02T10:00:00Z",  # a fullwidth digit
    "2026-12-02T10:00:00.Z",
]


@pytest.mark.parametrize("value", OUT_OF_RANGE + NOT_RFC3339)
def test_times_outside_rfc3339_or_the_calendar_are_422(client: FlaskClient, value: str) -> None:
    user = create_user(client)
    coupon = {"amount_off_cents": 100, "expires_at": value}
    response = client.post(f"/api/v1/users/{user['id']}/coupons", json=coupon, headers=ADMIN)
    assert_problem(response, 422, "validation", "expires_at")
    goods = create_goods(client)
    for field in ("starts_at", "ends_at"):
        sale = {
            "goods_id": goods["id"],
            "price_cents": 100,
            "quantity": 1,
            "per_user_limit": 1,
            "starts_at": "2026-12-02T10:00:00Z",
            "ends_at": "2026-12-02T11:00:00Z",
            field: value,
        }
        response = client.post("/api/v1/flash-sales", json=sale, headers=ADMIN)
        assert_problem(response, 422, "validation", field)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("0720-11-28T06:01:12.144Z", "0720-11-28T06:01:12.144000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
        ("2026-12-02t10:00:00+05:30", "2026-12-02T04:30:00Z"),
        ("2026-12-02T10:00:00.123456789-00:30", "2026-12-02T10:30:00.123456Z"),
        ("2026-12-02T10:00:00.12345678901234567890Z", "2026-12-02T10:00:00.123456Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999Z"),  # a leap second
    ],
)
def test_rfc3339_times_round_trip_with_four_digit_years(client: FlaskClient, value: str, stored: str) -> None:
    user = create_user(client)
    coupon = {"amount_off_cents": 100, "expires_at": value}
    response = client.post(f"/api/v1/users/{user['id']}/coupons", json=coupon, headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["expires_at"] == stored
    assert RFC3339_Z.fullmatch(response.get_json()["created_at"])


def test_every_year_is_answered_with_four_digits() -> None:
    for year in (1, 9, 99, 720, 999, 1000, 2026, 9999):
        text = rfc3339(datetime(year, 1, 2, 3, 4, 5, tzinfo=UTC))
        assert RFC3339_Z.fullmatch(text), text
        assert Timestamp().deserialize(text) == datetime(year, 1, 2, 3, 4, 5, tzinfo=UTC)


# Names and skus people read.


@pytest.mark.parametrize(
    "value",
    [
        " ",
        "\t\n",
        "\u3000",
        "\u200b\u2060\ufeff",
        "\u3164",
        "\u2800",
        "Tea\x1b[31m",
        "\x1b]0;title\x07",
        "a\x9b2J",
        "a\nb",
        "a\u2028b",
        "\x7f",
        "abc\u202egpj.exe",
        "\u2066x",
    ],
)
def test_blank_names_and_control_characters_are_422(client: FlaskClient, value: str) -> None:
    assert_problem(
        client.post("/api/v1/users", json={"name": value, "email": "a@example.com"}, headers=ADMIN),
        422,
        "validation",
        "name",
    )
    for field in ("name", "sku"):
        body = {"sku": "SKU-OK", "name": "Tea", "price_cents": 100, "stock": 1, field: value}
        response = client.post("/api/v1/goods", json=body, headers=ADMIN)
        assert_problem(response, 422, "validation", field)


def test_names_in_any_script_with_emoji_are_accepted(client: FlaskClient) -> None:
    name = "Ōolong 烏龍茶 \u0634\u0627\u06cc 👩\u200d🌾"
    body = {"sku": "ÜBER-1", "name": name, "price_cents": 100, "stock": 1}
    response = client.post("/api/v1/goods", json=body, headers=ADMIN)
    assert response.status_code == 201
    assert response.get_json()["name"] == name


# Bounds hold for what a request leads to.


def test_restocks_cannot_take_stock_past_the_bound(client: FlaskClient) -> None:
    goods = create_goods(client, stock=47)
    path = f"/api/v1/goods/{goods['id']}/restock"
    assert client.post(path, json={"quantity": 10**9 - 47}, headers=ADMIN).status_code == 200
    assert_problem(client.post(path, json={"quantity": 1}, headers=ADMIN), 422, "validation", "quantity")
    assert client.get(f"/api/v1/goods/{goods['id']}").get_json()["stock_available"] == 10**9
    missing = "/api/v1/goods/gds_01M88S610N83SY6VPQ23SAANM8/restock"
    assert_problem(client.post(missing, json={"quantity": 1}, headers=ADMIN), 404, "not-found")


def _sale(goods_id: str, price_cents: int, quantity: int, per_user_limit: int) -> dict[str, Any]:
    return {
        "goods_id": goods_id,
        "price_cents": price_cents,
        "quantity": quantity,
        "per_user_limit": per_user_limit,
        "starts_at": "2026-12-02T10:00:00Z",
        "ends_at": "2026-12-02T11:00:00Z",
    }


def test_a_flash_sale_whose_one_order_could_cost_more_than_the_bound_is_422(client: FlaskClient) -> None:
    goods = create_goods(client, stock=10)
    response = client.post("/api/v1/flash-sales", json=_sale(goods["id"], 10**12, 2, 2), headers=ADMIN)
    assert_problem(response, 422, "validation", "per_user_limit")
    assert client.get(f"/api/v1/goods/{goods['id']}").get_json()["stock_available"] == 10
    # One unit on sale: no buyer can take two, whatever the limit says.
    response = client.post("/api/v1/flash-sales", json=_sale(goods["id"], 10**12, 1, 5), headers=ADMIN)
    assert response.status_code == 201, response.get_json()


def test_units_a_flash_sale_holds_count_towards_the_restock_bound(client: FlaskClient) -> None:
    goods = create_goods(client, stock=10)
    sale = client.post("/api/v1/flash-sales", json=_sale(goods["id"], 100, 6, 1), headers=ADMIN)
    assert sale.status_code == 201, sale.get_json()
    path = f"/api/v1/goods/{goods['id']}/restock"
    # 4 available and 6 in the sale: room for 10**9 - 10 more, and not one unit past that.
    too_many = client.post(path, json={"quantity": 10**9 - 9}, headers=ADMIN)
    assert_problem(too_many, 422, "validation", "quantity")
    restocked = client.post(path, json={"quantity": 10**9 - 10}, headers=ADMIN)
    assert restocked.get_json()["stock_available"] == 10**9 - 6


def test_the_huge_literal_is_past_what_json_loads_converts() -> None:
    # Else the huge-literal test above would prove nothing.
    with pytest.raises(ValueError):
        json.loads(HUGE_INTEGER)


@given(
    moment=st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=st.just(UTC)),
    offset_minutes=st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
    fraction_digits=st.integers(min_value=0, max_value=12),
    lower=st.booleans(),
)
def test_every_rfc3339_spelling_of_an_instant_reads_back_as_that_instant(
    moment: datetime, offset_minutes: int, fraction_digits: int, lower: bool
) -> None:
    """Not only no 500s: what RFC 3339 allows is accepted (any offset, any fraction, t and z)."""
    unit = 10 ** max(0, 6 - fraction_digits)  # what the fraction written out can say
    moment = moment.replace(microsecond=moment.microsecond // unit * unit)
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
    if fraction_digits:
        text += "." + f"{local.microsecond:06d}".ljust(fraction_digits, "0")[:fraction_digits]
    offset = local.strftime("%z")
    text += "Z" if offset_minutes == 0 else f"{offset[:3]}:{offset[3:]}"
    if lower:
        text = text.lower()
    assert Timestamp().deserialize(text) == moment
