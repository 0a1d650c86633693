"""The sandbox provider's server API under /sandbox/api, as a shop's back end would call it.

Plain Flask rather than flask-smorest: the sandbox is a stand-in third party, so it must not
appear in the shop's own OpenAPI document. Views stay thin: authenticate, read the body, call
one function of `app.sandbox.service`, and turn its refusals into problem+json.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import ValidationError

from app.http_auth import bearer_token
from app.problems import flatten_errors, problem, validation_problem
from app.sandbox import service
from app.sandbox.deps import deps
from app.sandbox.models import SandboxPayment
from app.sandbox.schemas import PaymentCreateSchema

blp = Blueprint("sandbox_api", __name__, url_prefix="/sandbox/api")

IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
STATUS_BY_CODE = {"not-found": 404, "conflict": 409, "idempotency-key-reuse": 422}


class InvalidRequest(Exception):
    """A request the schema never got to see: not JSON, or a bad header."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@blp.before_request
def require_api_key() -> Response | None:
    """Every /sandbox/api call carries the shop's API key, compared in constant time."""
    token = bearer_token(request.headers.get("Authorization"))
    expected = deps().settings.sandbox_api_key.encode()
    if token is not None and hmac.compare_digest(token.encode(), expected):
        return None
    return problem(
        401, "unauthorized", "A valid sandbox API key is required.", headers={"WWW-Authenticate": "Bearer"}
    )


@blp.post("/payments")
def create_payment() -> tuple[Response, int, dict[str, str]]:
    data = _load(PaymentCreateSchema())
    key = _idempotency_key()
    with deps().db.uow() as uow:
        payment, created = service.create_payment(uow, idempotency_key=key, **data)
    if created:
        return _payment_json(payment), 201, {"Location": f"{blp.url_prefix}/payments/{payment.id}"}
    return _payment_json(payment), 200, {"Idempotent-Replayed": "true"}


@blp.get("/payments/<payment_id>")
def get_payment(payment_id: str) -> Response:
    with deps().db.uow() as uow:
        return _payment_json(service.get_payment(uow, payment_id))


@blp.post("/payments/<payment_id>/void")
def void_payment(payment_id: str) -> Response:
    with deps().db.uow() as uow:
        return _payment_json(service.void_payment(uow, payment_id))


@blp.post("/payments/<payment_id>/refund")
def refund_payment(payment_id: str) -> Response:
    with deps().db.uow() as uow:
        return _payment_json(service.refund_payment(uow, payment_id))


@blp.post("/payments/<payment_id>/pay")
def pay(payment_id: str) -> Response:
    """Settle as paid without the checkout page: for tests and scripted demos."""
    with deps().db.uow() as uow:
        return _payment_json(service.settle(uow, payment_id, "succeeded"))


@blp.post("/payments/<payment_id>/decline")
def decline(payment_id: str) -> Response:
    """Settle as failed without the checkout page: for tests and scripted demos."""
    with deps().db.uow() as uow:
        return _payment_json(service.settle(uow, payment_id, "failed"))


@blp.errorhandler(service.SandboxError)
def sandbox_error(error: service.SandboxError) -> Response:
    response = problem(STATUS_BY_CODE.get(error.code, 409), error.code, error.detail)
    if isinstance(error, service.WrongStatus):
        body = response.get_json()
        body["status_now"] = error.status_now
        response.set_data(json.dumps(body))
    return response


@blp.errorhandler(ValidationError)
def schema_error(error: ValidationError) -> Response:
    return validation_problem(flatten_errors(error.messages))


@blp.errorhandler(InvalidRequest)
def request_error(error: InvalidRequest) -> Response:
    return validation_problem(error.errors)


def checkout_url(payment_id: str) -> str:
    return f"{deps().settings.public_url}/sandbox/checkout/{payment_id}"


def _payment_json(payment: SandboxPayment) -> Response:
    return jsonify(
        id=payment.id,
        status=payment.status,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        reference=payment.reference,
        checkout_url=checkout_url(payment.id),
    )


def _load(schema: PaymentCreateSchema) -> dict[str, Any]:
    """The JSON body through `schema`; anything malformed is a 422 naming what was wrong."""
    if not request.is_json:
        raise InvalidRequest({"body": ["Content-Type must be application/json."]})
    try:
        body = json.loads(request.get_data())
    except (ValueError, RecursionError):  # bad JSON or UTF-8, too many digits, nested too deep
        raise InvalidRequest({"body": ["The body is not valid JSON."]}) from None
    data: dict[str, Any] = schema.load(body)
    return data


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest({"Idempotency-Key": ["Must be 1 to 255 printable ASCII characters."]})
    return key
