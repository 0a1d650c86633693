"""Fuzz every documented operation from the OpenAPI document, with data that fits it and data that
does not: no request, however malformed, may produce a 5xx, and every answer keeps to the
document (its status codes, content types and response schemas). Runs in-process against real
PostgreSQL and Redis, as the operator and as a user. (schemathesis generates the cases; its pytest
plugin is not used.)

100 examples per operation and mode: enough to find a time at the calendar's edge that overflows
and a NUL in a query argument that PostgreSQL refuses, should either come back. schemathesis
generates neither non-ASCII digits in a header nor integer literals past the 4,300 digits Python
converts; tests/integration/test_request_properties.py sends those."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from tests.support.api import ADMIN, bearer, create_user
from tests.support.env import settings_for
from tests.support.fuzzing import reproducible
from tests.support.provider_env import all_providers_env


def _cases() -> list[Any]:
    """Each documented operation in each generation mode, read from the document itself.

    Negative cases need an input that can be made invalid: a public GET by an unconstrained
    string id has none (any string is a valid id; an unknown one is a 404), so it runs positive only.
    """
    spec_app = create_app(settings_for("sqlite://", "redis://127.0.0.1:1/0"))
    paths = spec_app.test_client().get("/api/openapi.json").get_json()["paths"]
    methods = {"get", "post", "put", "patch", "delete"}
    cases = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method not in methods:
                continue
            parameters = [p for p in operation.get("parameters", []) if p["in"] != "path"]
            negatable = bool(parameters or operation.get("requestBody") or operation.get("security"))
            modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE][: 2 if negatable else 1]
            cases += [pytest.param(method.upper(), path, m, id=f"{method.upper()} {path} {m}") for m in modes]
    return cases


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 100


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_every_answer_keeps_the_document(app: Flask, method: str, path: str, mode: GenerationMode) -> None:
    operation = schemathesis.openapi.from_wsgi("/api/openapi.json", app)[path][method]
    user = create_user(app.test_client())

    @given(case=operation.as_strategy(generation_mode=mode))
    @reproducible(EXAMPLES)
    def any_case(case: Any) -> None:
        for headers in (ADMIN, bearer(user["token"])):
            case.call_and_validate(headers=headers, checks=CHECKS)

    any_case()


@pytest.mark.parametrize("provider", ["alipay", "wechatpay", "stripe"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_real_providers_webhooks_keep_the_document_when_enabled(
    pg_url: str, redis_url: str, provider: str, mode: GenerationMode
) -> None:
    """With the providers enabled, a fuzzed notification reaches the adapter's verification:
    none is signed, so each is refused, and never with a 5xx."""
    app = create_app(settings_for(pg_url, redis_url, **all_providers_env()))
    operation = schemathesis.openapi.from_wsgi("/api/openapi.json", app)[
        f"/api/v1/payments/webhooks/{provider}"
    ]["POST"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @reproducible(EXAMPLES)
    def any_case(case: Any) -> None:
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code in (400, 422), (response.status_code, response.text)

    any_case()
