"""A server-rendered view of sagas for operators: the list, one saga's timeline of steps and
compensations, and a Retry button for a FAILED one.

The operator signs in with the admin token (kept in a signed session cookie), or a tool sends it
as a bearer header. Without it: the login page for a browser, 401 for anything else. The Retry
form carries a per-session CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for

from app.errors import ServiceError
from app.extension import runtime
from app.http_auth import bearer_token
from app.services import saga_queries
from app.services.order_saga import STATUSES as SAGA_STATUSES

blp = Blueprint("admin_ui", __name__, url_prefix="/admin", template_folder="templates")

F = TypeVar("F", bound=Callable[..., Any])

LIST_LIMIT = 200  # the sagas that moved last


def _is_operator() -> bool:
    token = runtime().settings.admin_token
    given = bearer_token(request.headers.get("Authorization"))
    if given is not None and hmac.compare_digest(given.encode(), token.encode()):
        return True
    return bool(session.get("operator")) and session.get("token_tag") == _tag(token)


def _tag(token: str) -> str:
    """Rotating the admin token signs every session out."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def operator_only(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _is_operator():
            if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                return redirect(url_for("admin_ui.login", next=request.path))
            abort(401)
        return view(*args, **kwargs)

    return cast(F, wrapper)


@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        given = request.form.get("token", "")
        if hmac.compare_digest(given.encode(), runtime().settings.admin_token.encode()):
            session.clear()
            session["operator"] = True
            session["token_tag"] = _tag(runtime().settings.admin_token)
            session["csrf"] = secrets.token_urlsafe(24)
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/admin/") else url_for("admin_ui.list_sagas"))
        error = "That is not the operator's token."
    return Response(render_template("admin/login.html", error=error), status=401 if error else 200)


@blp.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("admin_ui.login"))


@blp.get("/sagas")
@operator_only
def list_sagas() -> str:
    status = request.args.get("status") or None
    if status not in (None, *SAGA_STATUSES):
        abort(422)
    with runtime().db.uow() as uow:
        sagas = saga_queries.for_console(uow, status, limit=LIST_LIMIT)
        errors = {saga.id: saga_queries.last_error(saga) for saga in sagas}
    return render_template(
        "admin/sagas.html", sagas=sagas, errors=errors, status=status, statuses=SAGA_STATUSES
    )


@blp.get("/sagas/<saga_id>")
@operator_only
def show_saga(saga_id: str) -> str:
    with runtime().db.uow() as uow:
        try:
            saga = saga_queries.get_saga(uow, saga_id)
        except ServiceError:
            abort(404)
        order = saga_queries.order_of(uow, saga)
        payment = order.payment if order is not None else None
    message = request.args.get("message")
    return render_template(
        "admin/saga.html",
        saga=saga,
        order=order,
        payment=payment,
        flower_url=runtime().settings.flower_url,
        csrf=_csrf(),
        message=message,
    )


@blp.post("/sagas/<saga_id>/retry")
@operator_only
def retry_saga(saga_id: str) -> Any:
    if request.headers.get("Authorization") is None and not hmac.compare_digest(
        request.form.get("csrf", "").encode(), _csrf().encode()
    ):
        abort(403)
    try:
        runtime().engine.retry(saga_id)
        message = "Retry sent: the saga resumes from the step that failed."
    except ServiceError as error:
        message = error.detail
    return redirect(url_for("admin_ui.show_saga", saga_id=saga_id, message=message))


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])
