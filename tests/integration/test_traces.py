"""Traces across real processes: one trace follows an order from `POST /orders` through every
saga task and the call to the provider. On the whole stack (gunicorn and a worker process, both
exporting over OTLP/HTTP to a stand-in collector), and with the API in this process keeping its
spans in the SDK's in-memory exporter beside a real worker process. With tracing off, the outbox
keeps no trace context."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from werkzeug.serving import make_server

from app import create_app, outbox, tracing
from app.extension import runtime
from scripts.servers import Server, free_port, start_redis
from tests.support.api import bearer, create_goods, create_user
from tests.support.databases import truncate_all
from tests.support.env import service_env, settings_for
from tests.support.otlp import Collector, ReceivedSpan
from tests.support.processes import celery_worker, wait_until
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

    def orphans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        ids = {span.span_id for span in spans}
        return [span for span in spans if span is not root and span.parent_id not in ids]

    def whole() -> list[ReceivedSpan] | None:
        # Each process exports in its own batches, so a child can arrive before its parent:
        # the trace is whole once every wanted span is in and none lacks its parent.
        spans = collector.trace(root.trace_id)
        names = " ".join(span.name for span in spans)
        provider_call = any(s.service == "ordersaga-api" and "/sandbox/" in s.name for s in spans)
        complete = all(step in names for step in wanted) and provider_call
        return spans if complete and not orphans(spans) else None

    # Times out, showing the spans received, unless they form one tree under POST /orders
    # across both processes.
    spans = wait_until(whole, timeout=30, what=lambda: f"one whole trace\n{collector.trace(root.trace_id)}")
    services = {span.service for span in spans}
    assert services == {"ordersaga-api", "ordersaga-worker"}, services


def test_with_the_in_memory_exporter_the_api_and_a_real_worker_make_one_trace(
    pg_url: str, tmp_path: Path
) -> None:
    """The API in this process, served over HTTP, its spans kept by the SDK's in-memory
    exporter; a real worker process exporting to the stand-in collector. The two halves are
    one trace: POST /orders, the saga's tasks in the worker, and the worker's call to the
    provider (the sandbox, which this API serves) back in the in-memory half."""
    redis = start_redis(tmp_path / "redis")
    collector = Collector()
    exporter = InMemorySpanExporter()
    port = free_port()
    public = {"ORDERSAGA_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    app = create_app(settings_for(pg_url, redis.url, **public))
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = service_env(pg_url, redis.url, **public, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url)
    worker = celery_worker({**env, "OTEL_BSP_SCHEDULE_DELAY": "200"}, tmp_path).start()
    tracing.start("ordersaga-api", app, exporter=exporter)
    try:
        client = app.test_client()  # set-up only: the order itself goes over HTTP
        buyer, goods = create_user(client), create_goods(client)
        body = {"items": [{"goods_id": goods["id"], "quantity": 1}]}
        url = f"http://127.0.0.1:{port}/api/v1/orders"
        placed = requests.post(url, json=body, headers=bearer(buyer["token"]), timeout=10)
        assert placed.status_code == 202, placed.text
        root = next(s for s in exporter.get_finished_spans() if s.name == "POST /api/v1/orders")
        trace_id = f"{root.context.trace_id:032x}"

        def one_tree(here: list[Any], there: list[ReceivedSpan]) -> bool:
            """Every span's parent is in this trace, in either half."""
            ids = {f"{s.context.span_id:016x}" for s in here} | {s.span_id for s in there}
            parents = [f"{s.parent.span_id:016x}" for s in here if s.parent is not None]
            return set(parents + [s.parent_id for s in there]) <= ids

        def whole() -> tuple[list[Any], list[ReceivedSpan]] | None:
            here = [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]
            there = collector.trace(trace_id)
            names = " ".join(s.name for s in there)
            provider_call = any("/sandbox/" in s.name for s in here)
            complete = provider_call and "run/orders.saga.create_payment" in names
            return (here, there) if complete and one_tree(here, there) else None

        # The worker exports in batches, so its spans may arrive after the API's children of them.
        _, there = wait_until(whole, timeout=60, what=lambda: f"one whole trace\n{worker.log()[-3000:]}")
        assert {s.service for s in there} == {"ordersaga-worker"}
    finally:
        tracing.stop()
        worker.stop()
        server.shutdown()
        collector.close()
        redis.stop()
        runtime(app).db.dispose()
        truncate_all(pg_url)


def test_with_tracing_off_the_outbox_keeps_no_trace_context(app: Flask) -> None:
    assert not tracing.configured({})
    with runtime(app).db.uow() as uow:
        message = outbox.add(uow, "ops.ping", {"token": "t"}, "members")
        uow.commit()
    assert message.trace_context is None
