"""application/problem+json for every error, with the contract's stable `code`.

Validation errors from webargs (bad JSON, wrong types, unknown fields, missing fields, a
non-JSON content type) all become 422 `validation` with `errors` keyed by field name; nested
fields are named by dotted paths (`items.0.quantity`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from app.errors import InvalidInput, ServiceError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# What SQLAlchemy raises when the database cannot be reached or drops the connection.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)

STATUS_BY_CODE = {
    "validation": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not-found": 404,
    "conflict": 409,
    "idempotency-key-reuse": 422,
    "insufficient-stock": 409,
    "sold-out": 409,
    "limit-exceeded": 409,
    "not-active": 409,
    "rate-limited": 429,
    "overloaded": 503,
    "invalid-signature": 400,
    "amount-mismatch": 422,
}

CODE_BY_STATUS = {
    400: "validation",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "validation",
    414: "validation",
    415: "validation",
    422: "validation",
    429: "rate-limited",
    431: "validation",
    503: "unavailable",
}


def problem_body(
    status: int, code: str, detail: str, errors: Mapping[str, list[str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:ordersaga:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = dict(errors)
    return body


def service_problem(error: ServiceError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of a domain error, for Flask views and the WSGI fast path alike."""
    if isinstance(error, InvalidInput):
        return 422, validation_body(error.errors), {}
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    status = STATUS_BY_CODE.get(error.code, 409)
    return status, problem_body(status, error.code, error.detail), headers


def problem(
    status: int,
    code: str,
    detail: str,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return problem_response(status, problem_body(status, code, detail, errors), headers or {})


def problem_response(status: int, body: dict[str, Any], headers: Mapping[str, str]) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for name, value in headers.items():
        response.headers[name] = value
    return response


def validation_body(errors: Mapping[str, list[str]]) -> dict[str, Any]:
    fields = ", ".join(sorted(errors))
    return problem_body(422, "validation", f"Invalid input: {fields}.", errors)


def validation_problem(errors: Mapping[str, list[str]]) -> Response:
    return problem_response(422, validation_body(errors), {})


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into `{"dotted.field": ["message", ...]}`."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = "body" if key == "_schema" else str(key)
            flat.update(flatten_errors(value, f"{prefix}.{name}" if prefix else name))
        return flat
    if isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "body": [str(m) for m in messages]}
        flat = {}
        for value in messages:
            flat.update(flatten_errors(value, prefix))
        return flat
    return {prefix or "body": [str(messages)]}


def webargs_errors(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """webargs nests messages by location first (`{"json": {...}}`): drop that level."""
    messages = data.get("messages") or data.get("errors") or {}
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for location, value in messages.items():
            if isinstance(value, list | tuple) and all(isinstance(m, str) for m in value):
                flat.update({"body" if location == "json" else str(location): list(value)})
            else:
                flat.update(flatten_errors(value))
    return flat or {"body": ["Invalid request."]}


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None)
    if status in (400, 422) and isinstance(data, Mapping) and ("messages" in data or "errors" in data):
        return validation_problem(webargs_errors(data))
    if status >= 500:
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("unhandled error", exc_info=original)
        return problem(status, "internal", "An internal error occurred; it has been logged.")
    code = CODE_BY_STATUS.get(status, "error")
    # Keep what the exception says in headers (a 405's Allow, a 401's WWW-Authenticate).
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    return problem(status, code, error.description or HTTPStatus(status).phrase, headers=headers)


def handle_service_error(error: ServiceError) -> Response:
    return problem_response(*service_problem(error))


def database_unavailable(error: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The database refused or dropped the connection (a restart, a failover): nothing was
    committed, so the client may send the request again, with its idempotency key if it has one."""
    log.warning("database unavailable: %s", str(error).splitlines()[0])
    detail = "The database is unavailable; send the request again shortly."
    return 503, problem_body(503, "unavailable", detail), {"Retry-After": "1"}


def handle_database_unavailable(error: Exception) -> Response:
    return problem_response(*database_unavailable(error))


def handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error")
    return problem(500, "internal", "An internal error occurred; it has been logged.")
