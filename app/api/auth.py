"""Bearer-token authentication: the operator's token, or a user's.

No or unknown token: 401. A user on an operator endpoint: 403. Authentication runs before the
body is parsed, so an anonymous caller learns nothing about what a valid body looks like.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from functools import wraps
from http import HTTPStatus
from typing import Any, TypeVar, cast

from flask import g, request

from app.errors import Forbidden, Unauthorized
from app.extension import runtime
from app.http_auth import bearer_token

F = TypeVar("F", bound=Callable[..., Any])

BEARER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@dataclass(frozen=True)
class Principal:
    user_id: str | None  # None: the operator

    @property
    def is_operator(self) -> bool:
        return self.user_id is None


def authenticate() -> Principal:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise Unauthorized("A bearer token is required.")
    app_state = runtime()
    if hmac.compare_digest(token.encode(), app_state.settings.admin_token.encode()):
        return Principal(user_id=None)
    user_id = app_state.authenticator.user_id(token, time.monotonic())
    if user_id is None:
        raise Unauthorized("The bearer token is not valid.")
    return Principal(user_id=user_id)


def current_principal() -> Principal:
    principal: Principal = g.principal
    return principal


def current_user_id() -> str:
    user_id = current_principal().user_id
    assert user_id is not None, "current_user_id() outside a user_required view"
    return user_id


def _guard(check: Callable[[Principal], None], statuses: tuple[int, ...]) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            check(principal)
            g.principal = principal
            return view(*args, **kwargs)

        # Tell the OpenAPI document that this endpoint wants a bearer token, and how it says no.
        apidoc = deepcopy(getattr(view, "_apidoc", {}))
        apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), "security": BEARER_SECURITY}
        responses = apidoc.setdefault("response", {}).setdefault("responses", {})
        for status in statuses:
            responses.setdefault(status, []).append(HTTPStatus(status).name)
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator


def _operator_only(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("This endpoint is for the operator.")


def _user_only(principal: Principal) -> None:
    if principal.is_operator:
        raise Forbidden("This endpoint is for users; the operator has no account of its own.")


def _anyone(principal: Principal) -> None:
    return None


operator_required = _guard(_operator_only, (401, 403))
user_required = _guard(_user_only, (401, 403))
login_required = _guard(_anyone, (401,))
