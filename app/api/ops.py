"""Liveness, readiness and metrics for the platform that runs the service, and its front page."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from flask import Blueprint, Response, jsonify
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from app import metrics
from app.bootstrap import Runtime
from app.broker import broker_answers, queue_depths
from app.extension import runtime
from app.models.orders import Order
from app.services import backlog
from app.services.order_saga import STATUSES as SAGA_STATUSES
from app.timeutil import utcnow
from sagas.models import Saga

blp = Blueprint("ops", __name__)

# What the service's root shows a person who arrives there: the sandbox's "Back to the shop"
# leads here, and so does a newcomer's first look at http://127.0.0.1:8000/.
INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ordersaga</title></head>
<body style="font-family: system-ui, sans-serif; margin: 40px;">
<h1>ordersaga</h1>
<p>The order-and-payment service is running.</p>
<ul>
<li><a href="/api/v1/goods">The goods</a> (the API, under /api/v1)</li>
<li><a href="/api/docs">The API's documentation</a></li>
<li><a href="/admin/sagas">The saga console</a> (operators)</li>
</ul>
</body></html>
"""


@blp.get("/")
def index() -> Response:
    return Response(INDEX, mimetype="text/html")


@blp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> Response:
    app_state = runtime()
    checks = {
        "database": _database_answers(app_state),
        "broker": broker_answers(app_state.settings.broker_url),
    }
    failed = [name for name, (ok, _) in checks.items() if not ok]
    body = {
        "status": "ready" if not failed else "unavailable",
        "checks": {name: detail for name, (_, detail) in checks.items()},
    }
    if failed:
        body["detail"] = f"not ready: {', '.join(failed)} did not answer"
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    return response


def _database_answers(app_state: Runtime) -> tuple[bool, str]:
    try:
        with app_state.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True, "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported by name
        return False, f"{type(error).__name__}: {error}"[:200]


@blp.get("/metrics")
def metrics_endpoint() -> Response:
    app_state = runtime()
    body = metrics.render(
        [lambda: _queue_depth(app_state), lambda: _orders_and_sagas(app_state), lambda: _backlog(app_state)]
    )
    # content_type, not mimetype: Flask would add a second "; charset=utf-8" to a text/* mimetype.
    return Response(body, content_type=metrics.CONTENT_TYPE)


def _orders_and_sagas(app_state: Runtime) -> Iterable[GaugeMetricFamily]:
    """Counted from the database at scrape time: right whatever process made the change."""
    orders = GaugeMetricFamily(
        "ordersaga_orders", "Orders by status and cancel reason.", labels=["status", "cancel_reason"]
    )
    sagas = GaugeMetricFamily(
        "ordersaga_sagas", "Sagas by status (FAILED ones need an operator).", labels=["status"]
    )
    with app_state.db.uow() as uow:
        for status, reason, count in uow.session.execute(
            select(Order.status, Order.cancel_reason, func.count()).group_by(
                Order.status, Order.cancel_reason
            )
        ):
            orders.add_metric([status, reason or ""], count)
        by_status = dict(uow.session.execute(select(Saga.status, func.count()).group_by(Saga.status)).all())
    for status in SAGA_STATUSES:
        sagas.add_metric([status], by_status.get(status, 0))
    yield orders
    yield sagas


def _backlog(app_state: Runtime) -> Iterable[GaugeMetricFamily]:
    stale = timedelta(seconds=app_state.settings.saga_stale_seconds)
    with app_state.db.uow() as uow:
        figures = backlog.read(uow, utcnow(), stale)
    yield GaugeMetricFamily(
        "ordersaga_outbox_unsent",
        "Messages committed and due but not yet sent to the broker.",
        figures.outbox_unsent,
    )
    yield GaugeMetricFamily(
        "ordersaga_outbox_oldest_unsent_age_seconds",
        "How long the oldest message not yet sent to the broker has waited (0 when none).",
        figures.outbox_oldest_seconds,
    )
    yield GaugeMetricFamily(
        "ordersaga_sagas_stalled",
        "Sagas running or compensating that have not moved for ORDERSAGA_SAGA_STALE_SECONDS.",
        figures.sagas_stalled,
    )


def _queue_depth(app_state: Runtime) -> Iterable[GaugeMetricFamily]:
    family = GaugeMetricFamily(
        "ordersaga_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
    )
    up = GaugeMetricFamily("ordersaga_queue_broker_up", "1 when the broker answered this scrape.")
    try:
        depths = queue_depths(app_state.settings.broker_url)
    except Exception:  # noqa: BLE001 - a down broker must not break the whole scrape
        up.add_metric([], 0)
    else:
        up.add_metric([], 1)
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
    yield family
    yield up
