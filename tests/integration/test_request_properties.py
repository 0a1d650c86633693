"""Property tests: every request schema's fields fed with generated values.

Each case starts from a body the endpoint accepts and replaces fields with anything JSON can
carry: huge and tiny numbers (integer literals past what Python converts among them), every JSON
type, text from every Unicode category (lone surrogates too), and times at the calendar's edges
in RFC 3339 and in shapes it does not allow. Whatever comes in, the answer is no 5xx; a 4xx is
problem+json with the contract's fields; and every time in a 2xx answer is RFC 3339 UTC with a
four-digit year. On PostgreSQL and a real Redis, because what a database refuses is the point.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from app.services.webhooks import expected_signature
from tests.support.api import ADMIN, bearer, create_goods, create_user
from tests.support.env import SANDBOX_API_KEY, WEBHOOK_SECRET
from tests.support.fuzzing import reproducible

RFC3339_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")
TIME_KEYS = (
    "created_at",
    "updated_at",
    "expires_at",
    "starts_at",
    "ends_at",
    "payment_deadline",
    "started_at",
    "finished_at",
)
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
EXAMPLES = 150


class Literal:
    """A JSON number written out as is: json.dumps cannot write an integer of 5,000 digits."""

    def __init__(self, text: str) -> None:
        self.text = text


def encode(value: Any) -> str:
    literals: list[str] = []

    def placeholder(item: Any) -> Any:
        if isinstance(item, Literal):
            literals.append(item.text)
            return f"__literal_{len(literals) - 1}__"
        raise TypeError(item)

    text = json.dumps(value, default=placeholder)
    for index, literal in enumerate(literals):
        text = text.replace(f'"__literal_{index}__"', literal)
    return text


def _offsets() -> st.SearchStrategy[timezone]:
    return st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    )


def times() -> st.SearchStrategy[str]:
    """RFC 3339 times from year 1 to 9999 with any offset, some of which fall off the calendar
    once in UTC, and ISO 8601 shapes RFC 3339 does not allow."""
    aware = st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=_offsets()
    )
    return st.one_of(
        aware.map(lambda moment: moment.isoformat()),
        aware.map(
            lambda moment: (
                moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if moment.utcoffset() == timedelta(0)
                else moment.isoformat()
            )
        ),
        aware.map(lambda moment: moment.strftime("%G-W%V-%uT%H:%M:%SZ")),
        aware.map(lambda moment: moment.strftime("%Y%m%dT%H%M%SZ")),
        aware.map(lambda moment: moment.replace(tzinfo=None).isoformat()),
        st.sampled_from(
            [
                "0001-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59-01:00",
                "0000-01-01T00:00:00Z",
                "2026-02-29T00:00:00Z",
                "2026-12-02T24:00:00Z",
                "2026-12-02T10:00:60Z",
                "2026-12-02T10:00:00+99:99",
                "2026-12-02 10:00:00Z",
                "2026-12-02T10:00:00.1234567890123Z",
            ]
        ),
    )


def numbers() -> st.SearchStrategy[Any]:
    edges = [
        0,
        -1,
        1,
        100,
        101,
        10**9,
        10**9 + 1,
        10**12,
        10**12 + 1,
        2**31,
        2**63 - 1,
        2**63,
        -(2**63) - 1,
        2**64,
        10**4299,
    ]
    return st.one_of(
        st.integers(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.sampled_from(edges),
        st.floats(),  # NaN and the infinities too: Python's json reads them
        st.integers(min_value=4301, max_value=6000).map(lambda digits: Literal("9" * digits)),
        st.sampled_from([Literal("1e400"), Literal("-0"), Literal("1.0"), Literal("1E2")]),
    )


def texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(st.characters(codec=None), max_size=80),  # every category, lone surrogates included
        st.text(st.characters(min_codepoint=0, max_codepoint=0x9F), max_size=20),  # control bytes
        st.builds("{}\x00{}".format, st.text(max_size=4), st.text(max_size=4)),  # PostgreSQL refuses NUL
        st.sampled_from(["", " ", "\u3000", "\x1b[31mred", "a" * 300, "\x00", "gds_", "'--", "%00"]),
        times(),
    )


def values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), numbers(), texts())
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )


def bodies(good: dict[str, Any]) -> st.SearchStrategy[Any]:
    """`good` with fields replaced, dropped or added; now and then not an object at all."""
    keep, drop = object(), object()
    field = st.one_of(st.just(keep), st.just(drop), values())

    def build(choices: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        body = {}
        for name, choice in choices.items():
            if choice is keep:
                body[name] = good[name]
            elif choice is not drop:
                body[name] = choice
        return {**body, **extra}

    changed = st.builds(
        build,
        st.fixed_dictionaries({name: field for name in good}),
        st.dictionaries(st.text(max_size=8), values(), max_size=1),
    )
    return st.one_of(changed, changed, changed, values())


def check_answer(response: Any, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.get_data(as_text=True)[:500])
    if 400 <= response.status_code < 500:
        assert response.mimetype == "application/problem+json", (what, response.status_code)
        problem = response.get_json()
        assert problem.keys() >= PROBLEM_KEYS, (what, problem)
        assert problem["status"] == response.status_code
        if problem["code"] == "validation":
            assert problem["errors"] and all(
                isinstance(messages, list) and all(isinstance(m, str) for m in messages)
                for messages in problem["errors"].values()
            ), (what, problem)
    elif response.mimetype == "application/json":
        for key, value in _times(response.get_json()):
            assert value is None or RFC3339_Z.fullmatch(str(value)), (what, key, value)
    assert response.headers.get("X-Request-ID"), what


def _times(body: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key in TIME_KEYS:
                found.append((key, value))
            else:
                found.extend(_times(value))
    elif isinstance(body, list):
        for item in body:
            found.extend(_times(item))
    return found


def _run(
    draw_case: st.SearchStrategy[Any], send: Callable[[Any], Any], what: str, examples: int = EXAMPLES
) -> None:
    @given(case=draw_case)
    @reproducible(examples)
    def property_holds(case: Any) -> None:
        check_answer(send(case), what)

    property_holds()


@pytest.fixture
def ids(client: FlaskClient) -> dict[str, Any]:
    user = create_user(client)
    goods = create_goods(client, stock=1000)
    coupon = client.post(
        f"/api/v1/users/{user['id']}/coupons", json={"amount_off_cents": 100}, headers=ADMIN
    ).get_json()
    now = datetime.now(UTC)
    sale = client.post(
        "/api/v1/flash-sales",
        json={
            "goods_id": goods["id"],
            "price_cents": 100,
            "quantity": 100,
            "per_user_limit": 2,
            "starts_at": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ends_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        headers=ADMIN,
    ).get_json()
    return {"user": user, "goods": goods, "coupon": coupon, "sale": sale}


def _bodies(ids: dict[str, Any]) -> dict[str, tuple[str, dict[str, str], dict[str, Any]]]:
    """Each JSON-body endpoint: (path, headers, a body it accepts)."""
    user, goods, sale = ids["user"], ids["goods"], ids["sale"]
    buyer = bearer(user["token"])
    return {
        "users": ("/api/v1/users", ADMIN, {"name": "Ann", "email": "ann@example.com"}),
        "goods": ("/api/v1/goods", ADMIN, {"sku": "SKU-P", "name": "Tea", "price_cents": 100, "stock": 5}),
        "restock": (f"/api/v1/goods/{goods['id']}/restock", ADMIN, {"quantity": 3}),
        "coupons": (
            f"/api/v1/users/{user['id']}/coupons",
            ADMIN,
            {"amount_off_cents": 100, "min_order_cents": 0, "expires_at": "2099-01-01T00:00:00Z"},
        ),
        "orders": (
            "/api/v1/orders",
            buyer,
            {"items": [{"goods_id": goods["id"], "quantity": 1}], "coupon_id": ids["coupon"]["id"]},
        ),
        "order-lines": ("/api/v1/orders", buyer, {"goods_id": goods["id"], "quantity": 1}),
        "flash-sales": (
            "/api/v1/flash-sales",
            ADMIN,
            {
                "goods_id": goods["id"],
                "price_cents": 50,
                "quantity": 1,
                "per_user_limit": 1,
                "starts_at": "2026-12-02T10:00:00Z",
                "ends_at": "2099-12-02T11:00:00Z",
            },
        ),
        "purchase": (f"/api/v1/flash-sales/{sale['id']}/purchase", buyer, {"quantity": 1}),
        "sandbox-payments": (
            "/sandbox/api/payments",
            bearer(SANDBOX_API_KEY),
            {
                "amount_cents": 100,
                "currency": "CNY",
                "callback_url": "http://127.0.0.1:1/hook",
                "reference": "ref-1",
            },
        ),
    }


ENDPOINTS = [
    "users",
    "goods",
    "restock",
    "coupons",
    "orders",
    "order-lines",
    "flash-sales",
    "purchase",
    "sandbox-payments",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_generated_bodies_never_make_a_server_error(
    app: Flask, client: FlaskClient, ids: dict[str, Any], endpoint: str
) -> None:
    path, headers, good = _bodies(ids)[endpoint]
    strategy = bodies(good)
    if endpoint == "order-lines":  # the fields of one line, inside an otherwise good order
        strategy = strategy.map(lambda line: {"items": [line]})

    def send(body: Any) -> Any:
        return client.post(path, data=encode(body), headers={**headers, "Content-Type": "application/json"})

    _run(strategy, send, endpoint)


LIST_PATHS = ["/api/v1/goods", "/api/v1/orders", "/api/v1/me/coupons", "/api/v1/admin/sagas"]


@pytest.mark.parametrize("path", LIST_PATHS)
def test_generated_query_strings_never_make_a_server_error(
    client: FlaskClient, ids: dict[str, Any], path: str
) -> None:
    headers = bearer(ids["user"]["token"]) if "/me/" in path else ADMIN
    hostile = st.one_of(texts(), numbers().map(lambda n: n.text if isinstance(n, Literal) else str(n)))
    good = {"limit": "5", "status": "PENDING", "user_id": ids["user"]["id"]}
    names = [*good, "cursor", "x"]

    def build(name: str, value: str, kept: list[bool]) -> dict[str, str]:
        """One hostile argument beside good ones, so that it gets past the others' checks."""
        return {**{k: v for (k, v), keep in zip(good.items(), kept, strict=True) if keep}, name: value}

    query = st.builds(build, st.sampled_from(names), hostile, st.lists(st.booleans(), min_size=3, max_size=3))

    def send(args: dict[str, str]) -> Any:
        encoded = "&".join(f"{quote(k)}={quote(v, safe='', errors='surrogatepass')}" for k, v in args.items())
        return client.get(f"{path}?{encoded}", headers=headers)

    _run(query, send, path, examples=400)  # reads are cheap


def test_generated_ids_in_paths_never_make_a_server_error(client: FlaskClient, ids: dict[str, Any]) -> None:
    templates = [
        "/api/v1/goods/{}",
        "/api/v1/users/{}",
        "/api/v1/coupons/{}",
        "/api/v1/orders/{}",
        "/api/v1/flash-sales/{}",
        "/api/v1/admin/sagas/{}",
        "/sandbox/api/payments/{}",
    ]
    case = st.tuples(st.sampled_from(templates), texts().filter(bool))

    def send(chosen: tuple[str, str]) -> Any:
        template, value = chosen
        headers = bearer(SANDBOX_API_KEY) if template.startswith("/sandbox") else ADMIN
        return client.get(template.format(quote(value, safe="", errors="surrogatepass")), headers=headers)

    _run(case, send, "ids")


def test_generated_webhook_signatures_and_bodies_never_make_a_server_error(client: FlaskClient) -> None:
    # What a header can carry: latin-1, without the line breaks that would end it.
    latin1 = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=120)
    header = st.one_of(
        latin1,
        st.builds(lambda t, v: f"t={t},v1={v}", latin1, latin1),
        st.builds(lambda v: f"t={int(datetime.now(UTC).timestamp())},v1={v}", latin1),
    )
    case = st.tuples(header, values())

    def send(chosen: tuple[str, Any]) -> Any:
        signature, body = chosen
        return client.post(
            "/api/v1/payments/webhooks/sandbox",
            data=encode(body),
            headers={"Sandbox-Signature": signature, "Content-Type": "application/json"},
        )

    _run(case, send, "webhook")


def test_generated_events_behind_a_valid_signature_never_make_a_server_error(client: FlaskClient) -> None:
    """The event's own fields, once the signature lets it past the first check."""
    data = {"payment_id": "pay_unknown", "amount_cents": 100, "currency": "CNY"}
    good = {"id": "evt_1", "type": "payment.succeeded", "created": 1_700_000_000, "data": data}
    case = st.one_of(bodies(good), bodies(data).map(lambda fields: {**good, "data": fields}))

    def send(body: Any) -> Any:
        raw = encode(body).encode()
        now = str(int(time.time()))
        signature = f"t={now},v1={expected_signature(WEBHOOK_SECRET, now, raw)}"
        return client.post(
            "/api/v1/payments/webhooks/sandbox",
            data=raw,
            headers={"Sandbox-Signature": signature, "Content-Type": "application/json"},
        )

    _run(case, send, "signed webhook")
