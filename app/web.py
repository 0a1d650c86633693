"""The Flask app factory: the HTTP entrypoint, given its dependencies by the composition root."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from flask import Flask, Request, Response, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from app import metrics
from app.api import (
    admin,
    admin_ui,
    coupons,
    docs,
    flash_sales,
    goods,
    ops,
    orders,
    payments,
    provider_webhooks,
    users,
)
from app.api.flash_fast import FlashPurchaseFastPath
from app.bootstrap import Runtime, bootstrap
from app.config import DEVELOPMENT_SECRETS_WARNING, Settings
from app.db import Database
from app.errors import ServiceError
from app.extension import EXTENSION
from app.logs import (
    clear_context,
    configure_logging,
    new_request_id,
    request_id_var,
    set_context,
    use_format,
    valid_request_id,
)
from app.problems import (
    DATABASE_UNAVAILABLE,
    handle_database_unavailable,
    handle_http_exception,
    handle_service_error,
    handle_unexpected,
    problem,
)
from app.relay_thread import RelayThread
from app.sandbox.web import init_sandbox
from app.schemas.common import ProblemSchema
from tasks.celery_app import celery_init_app

log = logging.getLogger(__name__)

JSON_BODY_METHODS = ("POST", "PUT", "PATCH")
WEBHOOK_PREFIX = "/api/v1/payments/webhooks/"


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with errors rendered, and documented, as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        """The error responses flask-smorest documents are problem+json, as they are served."""
        self.DEFAULT_RESPONSE_CONTENT_TYPE = "application/problem+json"
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE  # success responses stay application/json

    def handle_http_exception(self, error: HTTPException) -> Response:
        return handle_http_exception(error)


def create_app(
    settings: Settings | None = None, database: Database | None = None, runtime: Runtime | None = None
) -> Flask:
    """The Flask app, with its Celery app bound to it (Flask's own Celery recipe)."""
    runtime = runtime or bootstrap(settings, database)
    settings = runtime.settings
    use_format(settings.log_format)
    configure_logging()
    if settings.warn_development_secrets:
        log.warning(DEVELOPMENT_SECRETS_WARNING)

    app = Flask("ordersaga")
    # Signs the operator console's session cookie; derived, so no extra secret to configure.
    app.secret_key = hashlib.sha256(b"ordersaga-session:" + settings.admin_token.encode()).hexdigest()
    app.session_interface = ConsoleSessions()
    app.config.update(
        # Its own name: a session cookie of the whole site from before would still reach the
        # console, and signing out would not end it.
        SESSION_COOKIE_NAME="ordersaga_console",
        SESSION_COOKIE_PATH=ConsoleSessions.PATH,
        API_TITLE="ordersaga",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/docs/static/",  # served by app/api/docs.py, so no CDN is needed
        # Swagger UI would otherwise load a badge from validator.swagger.io on any other host.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        MAX_CONTENT_LENGTH=1024 * 1024,
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    app.extensions[EXTENSION] = runtime
    for engine in {runtime.db.engine, runtime.db.bookkeeping}:  # one engine on SQLite, two on PostgreSQL
        metrics.count_sql_statements(engine)
    _register_request_id(app)
    _register_api(app, runtime)
    celery_init_app(app, runtime)
    app.wsgi_app = FlashPurchaseFastPath(app.wsgi_app, runtime)  # type: ignore[method-assign]
    return app


def relay_in_background(app: Flask) -> None:
    """Let requests answer without waiting for the broker: a thread sends what they commit."""
    runtime: Runtime = app.extensions[EXTENSION]
    if runtime.relay is not None:
        runtime.db.after_commit = RelayThread(runtime.relay)


def _register_api(app: Flask, runtime: Runtime) -> None:
    api = ProblemApi(app)
    for blueprint in (
        users.blp,
        goods.blp,
        coupons.blp,
        orders.blp,
        payments.blp,
        provider_webhooks.blp,
        flash_sales.blp,
        admin.blp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(ops.blp)
    app.register_blueprint(docs.blp)
    app.register_blueprint(admin_ui.blp)
    init_sandbox(app, runtime.db, runtime.settings)
    app.register_error_handler(ServiceError, handle_service_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.register_error_handler(unavailable, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)

    @app.before_request
    def require_json_body() -> Response | None:
        """A body that is not JSON is refused by name, rather than read as "no fields"."""
        if (
            request.method in JSON_BODY_METHODS
            and request.path.startswith("/api/")
            and not request.path.startswith(WEBHOOK_PREFIX)  # verified on its raw bytes instead
            and request.content_length != 0
            and (request.content_length or request.headers.get("Transfer-Encoding"))
            and not request.is_json
        ):
            return problem(
                422,
                "validation",
                "The request body must be JSON (Content-Type: application/json).",
                {"body": ["Content-Type must be application/json."]},
            )
        return None


class ConsoleSessions(SecureCookieSessionInterface):
    """A session for the saga console alone. The API authenticates every request by its token
    and keeps no session, so its requests skip reading and signing a cookie; the cookie's path
    keeps browsers from sending it there at all."""

    PATH = str(admin_ui.blp.url_prefix)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path != self.PATH and not request.path.startswith(self.PATH + "/"):
            return self.make_null_session(app)  # type: ignore[return-value]
        return super().open_session(app, request)


def _register_request_id(app: Flask) -> None:
    @app.before_request
    def take_request_id() -> None:
        incoming = request.headers.get("X-Request-ID")
        g.request_id = incoming if valid_request_id(incoming) else new_request_id()
        g.request_id_token = request_id_var.set(g.request_id)
        ids = request.view_args or {}
        set_context(order_id=ids.get("order_id"), saga_id=ids.get("saga_id"))
        g.sql_source_token = metrics.sql_source_var.set(request.endpoint or "unmatched")

    @app.after_request
    def give_request_id(response: Response) -> Response:
        request_id = g.get("request_id") or new_request_id()
        response.headers["X-Request-ID"] = request_id
        log.info("%s %s %s", request.method, request.path, response.status_code)
        return response

    @app.teardown_request
    def forget_request_id(_error: Any = None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)
        clear_context()
        source = g.pop("sql_source_token", None)
        if source is not None:
            metrics.sql_source_var.reset(source)
