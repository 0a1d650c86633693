"""Health, readiness, metrics, the OpenAPI document and request ids."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

import pytest
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import update

from app import create_app, outbox
from app.extension import runtime
from app.models.outbox import OutboxMessage
from app.services.users import new_token
from app.timeutil import utcnow
from sagas.models import Saga
from scripts.servers import free_port
from tasks.celery_app import celery_config
from tests.support.api import bearer, create_goods, create_user
from tests.support.env import settings_for


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200


def test_readyz_when_database_and_broker_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("down", ["database", "broker"])
def test_readyz_names_what_failed(down: str, pg_url: str, redis_url: str) -> None:
    closed = free_port()
    database = f"postgresql+psycopg://postgres@127.0.0.1:{closed}/x" if down == "database" else pg_url
    broker = f"redis://127.0.0.1:{closed}/0" if down == "broker" else redis_url
    app = create_app(settings_for(database, broker, redis_url))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert down in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/orders/ord_01M8YRD0BXAM5QT0N3HK463VEN"),
        ("POST", "/api/v1/flash-sales/fls_01M8YRD0BXAM5QT0N3HK463VEN/purchase"),
    ],
)
def test_with_the_database_down_a_request_is_told_to_come_again(
    method: str, path: str, redis_url: str
) -> None:
    closed = free_port()
    app = create_app(settings_for(f"postgresql+psycopg://postgres@127.0.0.1:{closed}/x", redis_url))
    body = {"items": [{"goods_id": "gds_1", "quantity": 1}]} if path.endswith("orders") else {"quantity": 1}
    response = app.test_client().open(
        path,
        method=method,
        json=body if method == "POST" else None,
        headers=bearer(new_token("usr_01M8YRD0BXAM5QT0N3HK463VEN")),
    )
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "unavailable"
    assert response.headers["Retry-After"] == "1"


def test_metrics_expose_the_contract_families_and_queue_depth(
    app: Flask, client: FlaskClient, pg_url: str, redis_url: str
) -> None:
    # A message on a queue that no worker serves shows up as depth.
    sender = Celery("test-sender")
    sender.config_from_object(celery_config(settings_for(pg_url, redis_url)))
    before = _depth(client.get("/metrics").get_data(as_text=True), "members")
    sender.send_task("ops.ping", kwargs={"token": secrets.token_hex(4)}, queue="members")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert _depth(text, "members") == before + 1
    assert 'ordersaga_sagas{status="FAILED"} 0.0' in text
    for name in ("order", "saga", "webhook", "flash", "queue"):
        assert re.search(rf"^# TYPE \S*{name}\S* ", text, re.M), name


def test_metrics_content_type_is_the_text_formats_once(client: FlaskClient) -> None:
    assert client.get("/metrics").headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_metrics_leave_out_flowers_families(client: FlaskClient) -> None:
    """Flower's metrics, made as Flower makes them with the app loaded, reach the shared
    directory but not `/metrics`; Flower's own registry (its /metrics) still has them."""
    from flower.events import get_prometheus_metrics

    get_prometheus_metrics().events.labels("worker-1@test", "task-succeeded", "ops.ping").inc()
    in_directory = CollectorRegistry()
    multiprocess.MultiProcessCollector(in_directory)
    assert b"flower_events_total{" in generate_latest(in_directory)  # else this test proves nothing
    assert b"flower_events_total{" in generate_latest(REGISTRY)  # what Flower's /metrics serves

    text = client.get("/metrics").get_data(as_text=True)
    assert "ordersaga_sagas" in text
    assert "flower_" not in text


def _depth(text: str, queue: str) -> float:
    match = re.search(rf'^ordersaga_queue_depth{{queue="{queue}"}} (\S+)$', text, re.M)
    assert match, text
    return float(match.group(1))


def test_openapi_document_covers_every_api_endpoint(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path) for path, operations in document["paths"].items() for method in operations
    }
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (method, path) in documented
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and docs.mimetype == "text/html"


def test_api_docs_load_swagger_ui_from_the_service_itself(client: FlaskClient) -> None:
    page = client.get("/api/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(a.rsplit("/", 1)[1] for a in assets) == [
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    ]
    for asset in assets:
        assert asset.startswith("/api/docs/static/"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.mimetype in ("text/javascript", "application/javascript", "text/css"), asset
        assert len(response.get_data()) > 10_000, asset


def test_request_id_is_echoed_or_made_and_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        given = client.get("/api/v1/goods", headers={"X-Request-ID": "order-trace-42"})
    assert given.headers["X-Request-ID"] == "order-trace-42"
    assert any(getattr(r, "request_id", None) == "order-trace-42" for r in caplog.records)

    made = client.get("/api/v1/goods").headers["X-Request-ID"]
    assert made and made != "order-trace-42"
    for bad in ("x" * 201, "tab\there", ""):
        answer = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert answer != bad and 1 <= len(answer) <= 200
    # Errors carry it too.
    assert client.get("/api/v1/me", headers={"X-Request-ID": "e-1"}).headers["X-Request-ID"] == "e-1"


def test_the_root_is_a_page_that_leads_to_the_api(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for link in ('href="/api/v1/goods"', 'href="/api/docs"', 'href="/admin/sagas"'):
        assert link in page


def test_metrics_show_the_outbox_backlog_and_the_stalled_sagas(app: Flask, client: FlaskClient) -> None:
    """What the backlog alerts read: messages not yet sent (a held one waits on purpose and is
    left out) with the oldest one's age, and sagas that have not moved for the stale limit."""
    db = runtime(app).db
    before = _gauges(client)
    with db.uow() as uow:
        waiting = outbox.add(uow, "ops.ping", {"token": "a"}, "members")
        held = outbox.add(uow, "ops.ping", {"token": "b"}, "members")
        uow.session.flush()
        old = utcnow() - timedelta(minutes=5)
        uow.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == waiting.id).values(created_at=old)
        )
        uow.session.execute(update(OutboxMessage).where(OutboxMessage.id == held.id).values(held=True))
        uow.commit()  # not through the relay: nothing sends them
    buyer, goods = create_user(client), create_goods(client)
    placed = client.post(
        "/api/v1/orders",
        json={"items": [{"goods_id": goods["id"], "quantity": 1}]},
        headers=bearer(buyer["token"]),
    )
    assert placed.status_code == 202  # no worker here: its saga waits at its first step
    stale = timedelta(seconds=runtime(app).settings.saga_stale_seconds)
    with db.uow() as uow:
        uow.session.execute(
            update(Saga)
            .where(Saga.subject_id == placed.get_json()["id"])
            .values(updated_at=utcnow() - 2 * stale)
        )
        uow.commit()
    after = _gauges(client)
    assert after["ordersaga_outbox_unsent"] == before["ordersaga_outbox_unsent"] + 1
    assert after["ordersaga_outbox_oldest_unsent_age_seconds"] >= 300
    assert after["ordersaga_sagas_stalled"] == before["ordersaga_sagas_stalled"] + 1


def _gauges(client: FlaskClient) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {name: float(value) for name, value in re.findall(r"^(ordersaga_\w+) (\S+)$", text, re.M)}
