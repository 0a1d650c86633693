"""Fuzz every documented operation from the OpenAPI document: no request, however malformed,
may produce a 5xx (API.md section 2). Runs in-process against real PostgreSQL and Redis, as the
operator and as a user. (schemathesis generates the cases; its pytest plugin is not used.)"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from app import create_app
from tests.support.api import ADMIN, bearer, create_user
from tests.support.env import settings_for


def _operations() -> list[tuple[str, str]]:
    """The documented operations, read from the document itself (no database needed for it)."""
    spec_app = create_app(settings_for("sqlite://", "redis://127.0.0.1:1/0"))
    paths = spec_app.test_client().get("/api/openapi.json").get_json()["paths"]
    methods = {"get", "post", "put", "patch", "delete"}
    return [(m.upper(), path) for path, operations in paths.items() for m in operations if m in methods]


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_no_request_is_a_server_error(app: Flask, method: str, path: str) -> None:
    operation = schemathesis.openapi.from_wsgi("/api/openapi.json", app)[path][method]
    user = create_user(app.test_client())

    @given(case=operation.as_strategy())
    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,  # the same cases on every run: a failure here is reproducible
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def any_case(case: Any) -> None:
        for headers in (ADMIN, bearer(user["token"])):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

    any_case()
