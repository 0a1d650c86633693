"""The sandbox provider's API on PostgreSQL, as the shop's payment adapter calls it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extension import runtime
from app.sandbox import service
from app.sandbox.models import SandboxPayment
from tests.support.api import assert_problem, bearer
from tests.support.env import SANDBOX_API_KEY

KEY = bearer(SANDBOX_API_KEY)
GOOD: dict[str, Any] = {
    "amount_cents": 1999,
    "currency": "CNY",
    "callback_url": "http://127.0.0.1:8000/api/v1/payments/webhooks/sandbox",
    "reference": "ord_01TEST",
}


def create(client: FlaskClient, headers: dict[str, str] | None = None, **changes: Any) -> Any:
    return client.post("/sandbox/api/payments", json={**GOOD, **changes}, headers={**KEY, **(headers or {})})


def created(client: FlaskClient, **changes: Any) -> dict[str, Any]:
    response = create(client, **changes)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def action(client: FlaskClient, payment_id: str, verb: str) -> Any:
    return client.post(f"/sandbox/api/payments/{payment_id}/{verb}", headers=KEY)


def test_create_answers_a_pending_payment_with_its_checkout_url(app: Flask, client: FlaskClient) -> None:
    response = create(client)
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("sbx_")
    assert body["status"] == "pending"
    assert body["checkout_url"] == f"{runtime(app).settings.public_url}/sandbox/checkout/{body['id']}"
    assert {k: body[k] for k in ("amount_cents", "currency", "reference")} == {
        "amount_cents": 1999,
        "currency": "CNY",
        "reference": "ord_01TEST",
    }
    assert response.headers["Location"] == f"/sandbox/api/payments/{body['id']}"


def test_the_same_idempotency_key_gives_the_same_payment(client: FlaskClient) -> None:
    first = create(client, headers={"Idempotency-Key": "order-1-payment"})
    again = create(client, headers={"Idempotency-Key": "order-1-payment"})
    other = create(client, headers={"Idempotency-Key": "order-2-payment"})
    assert first.status_code == 201
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]


def test_an_idempotency_key_reused_with_other_parameters_is_refused(client: FlaskClient) -> None:
    assert create(client, headers={"Idempotency-Key": "k"}).status_code == 201
    assert_problem(
        create(client, headers={"Idempotency-Key": "k"}, amount_cents=1), 422, "idempotency-key-reuse"
    )


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Basic {SANDBOX_API_KEY}",
        f"Bearer {SANDBOX_API_KEY}x",
        "Bearer ключ",
    ],
)
def test_every_call_needs_the_api_key(client: FlaskClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    payment_id = created(client)["id"]
    calls = [
        client.post("/sandbox/api/payments", json=GOOD, headers=headers),
        client.get(f"/sandbox/api/payments/{payment_id}", headers=headers),
        *(
            client.post(f"/sandbox/api/payments/{payment_id}/{verb}", headers=headers)
            for verb in ("void", "refund", "pay", "decline")
        ),
    ]
    for response in calls:
        assert_problem(response, 401, "unauthorized")
    assert client.get(f"/sandbox/api/payments/{payment_id}", headers=KEY).get_json()["status"] == "pending"


def test_get_answers_the_payment(client: FlaskClient) -> None:
    payment = created(client)
    response = client.get(f"/sandbox/api/payments/{payment['id']}", headers=KEY)
    assert response.status_code == 200
    assert response.get_json() == payment


def test_void_a_pending_payment_once(client: FlaskClient) -> None:
    payment_id = created(client)["id"]
    response = action(client, payment_id, "void")
    assert response.status_code == 200
    assert response.get_json()["id"] == payment_id and response.get_json()["status"] == "voided"
    body = assert_problem(action(client, payment_id, "void"), 409, "conflict")
    assert body["status_now"] == "voided"


def test_pay_then_refund(client: FlaskClient) -> None:
    payment_id = created(client)["id"]
    assert action(client, payment_id, "pay").get_json()["status"] == "succeeded"
    assert assert_problem(action(client, payment_id, "void"), 409, "conflict")["status_now"] == "succeeded"
    assert assert_problem(action(client, payment_id, "decline"), 409, "conflict")["status_now"] == "succeeded"
    assert action(client, payment_id, "refund").get_json()["status"] == "refunded"
    assert assert_problem(action(client, payment_id, "refund"), 409, "conflict")["status_now"] == "refunded"


def test_only_a_succeeded_payment_can_be_refunded(client: FlaskClient) -> None:
    payment_id = created(client)["id"]
    assert assert_problem(action(client, payment_id, "refund"), 409, "conflict")["status_now"] == "pending"


def test_decline(client: FlaskClient) -> None:
    payment_id = created(client)["id"]
    assert action(client, payment_id, "decline").get_json()["status"] == "failed"
    assert assert_problem(action(client, payment_id, "pay"), 409, "conflict")["status_now"] == "failed"
    assert assert_problem(action(client, payment_id, "refund"), 409, "conflict")["status_now"] == "failed"


@pytest.mark.parametrize(
    "payment_id", ["sbx_01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "x" * 300, "sbx_%00", "%E2%98%83"]
)
@pytest.mark.parametrize("verb", [None, "void", "refund", "pay", "decline"])
def test_an_unknown_payment_is_not_found(client: FlaskClient, payment_id: str, verb: str | None) -> None:
    if verb is None:
        response = client.get(f"/sandbox/api/payments/{payment_id}", headers=KEY)
    else:
        response = action(client, payment_id, verb)
    assert_problem(response, 404, "not-found")


BAD_VALUES: list[tuple[str, Any]] = [
    ("amount_cents", None),
    ("amount_cents", "100"),
    ("amount_cents", 1.5),
    ("amount_cents", 2.0),
    ("amount_cents", True),
    ("amount_cents", 0),
    ("amount_cents", -1),
    ("amount_cents", 10**12 + 1),
    ("amount_cents", 10**30),
    ("currency", None),
    ("currency", "cny"),
    ("currency", "CN"),
    ("currency", "CNYY"),
    ("currency", "CNY\n"),
    ("currency", "C\x00Y"),
    ("currency", 156),
    ("callback_url", None),
    ("callback_url", ""),
    ("callback_url", "not a url"),
    ("callback_url", "ftp://example.com/hook"),
    ("callback_url", "/relative/hook"),
    ("callback_url", "http://example.com/" + "a" * 2048),
    ("callback_url", "http://example.com/\x00"),
    ("callback_url", ["http://example.com"]),
    ("reference", None),
    ("reference", ""),
    ("reference", "r" * 256),
    ("reference", "a\x00b"),
    ("reference", {"a": 1}),
    ("surprise", "field"),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_bad_values_are_422_naming_the_field(client: FlaskClient, field: str, value: Any) -> None:
    assert_problem(create(client, **{field: value}), 422, "validation", field)


@pytest.mark.parametrize("field", sorted(GOOD))
def test_a_missing_field_is_422_naming_it(client: FlaskClient, field: str) -> None:
    body = {k: v for k, v in GOOD.items() if k != field}
    assert_problem(client.post("/sandbox/api/payments", json=body, headers=KEY), 422, "validation", field)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{", "application/json"),
        ('{"amount_cents": 1', "application/json"),
        ("[]", "application/json"),
        ("null", "application/json"),
        ('"text"', "application/json"),
        ("[" * 100_000, "application/json"),
        ('{"amount_cents": ' + "9" * 5000 + "}", "application/json"),
        (b"\xff\xfe", "application/json"),
        ("", "application/json"),
        ("amount_cents=1", "application/x-www-form-urlencoded"),
        ('{"amount_cents": 1}', "text/plain"),
        ("", None),
    ],
)
def test_malformed_bodies_are_422(client: FlaskClient, data: str | bytes, content_type: str | None) -> None:
    response = client.post("/sandbox/api/payments", data=data, content_type=content_type, headers=KEY)
    assert_problem(response, 422, "validation", "body")


@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9", "tab\there"])
def test_a_bad_idempotency_key_is_422(client: FlaskClient, key: str) -> None:
    assert_problem(create(client, headers={"Idempotency-Key": key}), 422, "validation", "Idempotency-Key")


def test_the_sandbox_is_not_in_the_shops_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert not [path for path in paths if path.startswith("/sandbox")]


def test_unknown_routes_and_methods_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/sandbox/api/nothing", headers=KEY), 404, "not-found")
    assert_problem(client.delete("/sandbox/api/payments", headers=KEY), 405, "method-not-allowed")


def test_concurrent_creates_with_one_key_make_one_payment(app: Flask) -> None:
    """Insert first and let the unique key decide: racing requests all get the winner's payment."""
    db = runtime(app).db

    def create_once(_: int) -> str:
        with db.uow() as uow:
            payment, _created = service.create_payment(uow, idempotency_key="race", **GOOD)
            return payment.id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(create_once, range(16)))
    assert len(ids) == 1
    with db.uow() as uow:
        count = select(func.count()).where(SandboxPayment.idempotency_key == "race")
        assert uow.session.scalar(count) == 1


def test_a_pay_racing_a_void_has_exactly_one_winner(app: Flask, client: FlaskClient) -> None:
    db = runtime(app).db
    for _ in range(10):
        payment_id = created(client)["id"]

        def run(verb: str, payment_id: str = payment_id) -> str:
            with db.uow() as uow:
                try:
                    if verb == "pay":
                        return service.settle(uow, payment_id, "succeeded").status
                    return service.void_payment(uow, payment_id).status
                except service.WrongStatus:
                    return "lost"

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(run, ["pay", "void"]))
        assert outcomes in (["lost", "succeeded"], ["lost", "voided"])
        final = client.get(f"/sandbox/api/payments/{payment_id}", headers=KEY).get_json()["status"]
        assert final in outcomes
