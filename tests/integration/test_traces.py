"""Traces on the real stack (gunicorn, a worker process, PostgreSQL, Redis), exported over
OTLP/HTTP to a stand-in collector: one trace follows an order from `POST /orders` through every
saga task and the call to the provider. And with tracing off, nothing is exported and the outbox
keeps no trace context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from app import create_app, outbox, tracing
from app.extension import runtime
from app.models.outbox import OutboxMessage
from scripts.servers import Server
from tests.support.api import bearer, create_goods, create_user
from tests.support.databases import truncate_all
from tests.support.env import settings_for
from tests.support.otlp import Collector, ReceivedSpan
from tests.support.processes import wait_until
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def traced(pg_server: Server) -> Iterator[tuple[Stack, Collector]]:
    collector = Collector()
    stack = Stack(
        pg_server.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="200",  # milliseconds between exports: the test waits less
    )
    try:
        stack.start_api()
        stack.start_worker()
        yield stack, collector
    finally:
        stack.close()
        collector.close()


def _root(collector: Collector) -> ReceivedSpan | None:
    return next(
        (s for s in collector.spans if s.service == "ordersaga-api" and s.name == "POST /api/v1/orders"), None
    )


def test_one_trace_follows_an_order_from_the_api_through_every_saga_task(
    traced: tuple[Stack, Collector],
) -> None:
    stack, collector = traced
    buyer, goods = stack.user(), stack.goods(stock=3)
    coupon = stack.coupon(buyer)
    placed = stack.place(buyer, [(goods["id"], 1)], coupon["id"])
    assert placed.status_code == 202, placed.text
    stack.wait_order(placed.json()["id"])  # awaiting payment: every step up to the payment has run

    root = wait_until(lambda: _root(collector), timeout=30, what="the API's span of POST /orders")
    wanted = ("reserve_stock", "lock_coupon", "create_payment")

    def whole() -> list[ReceivedSpan] | None:
        spans = collector.trace(root.trace_id)
        names = " ".join(span.name for span in spans)
        provider_call = any(s.service == "ordersaga-api" and "/sandbox/" in s.name for s in spans)
        return spans if all(step in names for step in wanted) and provider_call else None

    spans = wait_until(whole, timeout=30, what=f"the order's whole trace\n{collector.trace(root.trace_id)}")
    services = {span.service for span in spans}
    assert services == {"ordersaga-api", "ordersaga-worker"}, services
    ids = {span.span_id for span in spans}
    orphans = [span for span in spans if span is not root and span.parent_id not in ids]
    assert not orphans, orphans  # one tree under POST /orders, across both processes


def test_a_message_keeps_the_trace_of_the_request_that_wrote_it(pg_url: str, redis_url: str) -> None:
    """With the SDK's in-memory exporter: the outbox row of POST /orders carries the trace
    context of that request's span, which the relay sends the message within."""
    exporter = InMemorySpanExporter()
    app = create_app(settings_for(pg_url, redis_url))
    runtime(app).db.after_commit = None  # nothing sent: the row is what this test reads
    tracing.start("ordersaga-api", app, exporter=exporter)
    try:
        client = app.test_client()
        buyer, goods = create_user(client), create_goods(client)
        body = {"items": [{"goods_id": goods["id"], "quantity": 1}]}
        assert client.post("/api/v1/orders", json=body, headers=bearer(buyer["token"])).status_code == 202
        request_span = next(s for s in exporter.get_finished_spans() if s.name == "POST /api/v1/orders")
        with runtime(app).db.uow() as uow:
            kept = uow.session.scalars(select(OutboxMessage.trace_context)).all()
        trace_id = f"{request_span.context.trace_id:032x}"
        assert kept and all(context and context.split("-")[1] == trace_id for context in kept), kept
    finally:
        tracing.stop()
        runtime(app).db.engine.dispose()
        truncate_all(pg_url)


def test_with_tracing_off_the_outbox_keeps_no_trace_context(app: Flask) -> None:
    assert not tracing.configured({})
    with runtime(app).db.uow() as uow:
        message = outbox.add(uow, "ops.ping", {"token": "t"}, "members")
        uow.commit()
    assert message.trace_context is None
