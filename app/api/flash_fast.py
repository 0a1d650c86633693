"""The flash-sale purchase path, served in front of Flask.

Every other request goes through Flask. This one is the hot path of a sale: tens of thousands of
attempts, almost all refused from one Redis call. Routing, contexts, hooks and the response
machinery of Flask cost more than the refusal itself, so this small WSGI layer serves it:
- the same rules, through the same `purchase_from`;
- the same problem+json answers;
- the same request id (taken or made, echoed, and logged);
- the same metrics.
It takes exactly the requests Flask would route to the `flash_sales.purchase` view (the method
compared as Werkzeug compares it, the path matched to its end), so that view only documents the
endpoint; its rule stays for the OpenAPI document and for Flask's answers to other methods.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from app import metrics
from app.api.flash_sales import purchase_from
from app.bootstrap import Runtime
from app.errors import ServiceError
from app.logs import new_request_id, request_id_var, valid_request_id
from app.problems import (
    DATABASE_UNAVAILABLE,
    PROBLEM_JSON,
    database_unavailable,
    problem_body,
    service_problem,
)

log = logging.getLogger("app")

ENDPOINT = "flash_sales.purchase"
PATH = re.compile(r"/api/v1/flash-sales/([^/]+)/purchase")  # fullmatch: `$` would let a final newline in
MAX_BODY = 64 * 1024
JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)

Answer = tuple[int, dict[str, Any], dict[str, str]]
StartResponse = Callable[..., Any]


class FlashPurchaseFastPath:
    def __init__(self, next_app: Callable[..., Iterable[bytes]], runtime: Runtime) -> None:
        self.next = next_app
        self.runtime = runtime

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "")).upper()  # as werkzeug reads it for routing
        match = PATH.fullmatch(environ.get("PATH_INFO", "")) if method == "POST" else None
        if match is None:
            return self.next(environ, start_response)  # type: ignore[no-any-return]
        given = environ.get("HTTP_X_REQUEST_ID")
        request_id = str(given) if valid_request_id(given) else new_request_id()
        reset = request_id_var.set(request_id)
        source = metrics.sql_source_var.set(ENDPOINT)  # its SQL is counted like the Flask view's
        try:
            status, body, headers = self._answer(environ, match.group(1))
            log.info("POST %s %s", environ.get("PATH_INFO"), status)
        finally:
            metrics.sql_source_var.reset(source)
            request_id_var.reset(reset)
        payload = json.dumps(body).encode()
        content_type = "application/json" if status < 300 else PROBLEM_JSON
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(payload))),
                ("X-Request-ID", request_id),
                *headers.items(),
            ],
        )
        return [payload]

    def _answer(self, environ: dict[str, Any], sale_id: str) -> Answer:
        try:
            body = self._body(environ)
            order_id = purchase_from(self.runtime, environ.get("HTTP_AUTHORIZATION", ""), body, sale_id)
        except ServiceError as error:
            return service_problem(error)
        except _BadBody as bad:
            return bad.answer
        except DATABASE_UNAVAILABLE as error:
            return database_unavailable(error)
        except Exception:  # as Flask does for every other endpoint: log it, answer a 500 problem
            log.exception("unhandled error")
            return 500, problem_body(500, "internal", "An internal error occurred; it has been logged."), {}
        return 202, {"order_id": order_id}, {"Location": f"/api/v1/orders/{order_id}"}

    @staticmethod
    def _body(environ: dict[str, Any]) -> Any:
        """The JSON body, under the same rules as every other endpoint (size, type, syntax)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            raise _BadBody(413, "The request body is too large.")
        if length == 0:
            return None
        if not JSON_TYPE.match(environ.get("CONTENT_TYPE", "")):
            raise _BadBody(
                422,
                "The request body must be JSON (Content-Type: application/json).",
                "Content-Type must be application/json.",
            )
        raw = environ["wsgi.input"].read(length)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise _BadBody(422, "Invalid input: body.", "Invalid JSON body.") from None


class _BadBody(Exception):
    def __init__(self, status: int, detail: str, message: str | None = None) -> None:
        super().__init__(detail)
        errors = {"body": [message or detail]}
        self.answer: Answer = (status, problem_body(status, "validation", detail, errors), {})
