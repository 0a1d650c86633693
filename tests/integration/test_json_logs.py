"""ORDERSAGA_LOG_FORMAT=json on the real stack: gunicorn, a worker for the shop's queues and one
for the coupon and member services, beat. Every log line of every process is one JSON object, and
one order is followed by its request id from the API through the tasks of both workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.servers import Server
from tests.support.processes import wait_until
from tests.support.stack import Stack, pay_at_provider

SHOP_QUEUES = ["orders", "inventory", "payments", "sandbox"]
SERVICE_QUEUES = ["coupons", "members"]


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    stack = Stack(pg_server.url, ORDERSAGA_LOG_FORMAT="json")
    try:
        stack.start_api()
        stack.start_worker("worker-shop", queues=SHOP_QUEUES)
        stack.start_worker("worker-services", queues=SERVICE_QUEUES)
        stack.start_beat()
        yield stack
    finally:
        stack.close()


def _entries(stack: Stack, name: str) -> list[dict[str, Any]]:
    """The process's log lines that are log records: everything but Celery's start-up banner,
    which a worker or beat prints to the terminal, not through logging."""
    entries = []
    for line in stack.processes[name].log().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))  # a line that starts as JSON must be JSON whole
    return entries


def test_one_order_is_followed_by_its_request_id_through_the_api_and_both_workers(stack: Stack) -> None:
    buyer, goods = stack.user(), stack.goods(stock=3)
    coupon = stack.coupon(buyer)
    request_id = "follow-me-0001"
    placed = stack.place(buyer, [(goods["id"], 1)], coupon["id"], headers={"X-Request-ID": request_id})
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    pay_at_provider(stack, stack.wait_order(order_id))
    assert stack.wait_order(order_id, ("CONFIRMED",))["status"] == "CONFIRMED"

    def followed() -> dict[str, list[dict[str, Any]]] | None:
        found = {
            name: [e for e in _entries(stack, name) if e["request_id"] == request_id]
            for name in ("api", "worker-shop", "worker-services")
        }
        steps = {e.get("step") for e in found["worker-services"]}
        return found if found["api"] and found["worker-shop"] and "lock_coupon" in steps else None

    found = wait_until(followed, timeout=30, what=f"the order's log lines\n{stack.logs()}")
    assert any(e["message"].startswith("POST /api/v1/orders 202") for e in found["api"])
    for name in ("worker-shop", "worker-services"):
        tasks = [e for e in found[name] if "task_id" in e]
        assert tasks, (name, found[name])
        for entry in tasks:
            assert entry["order_id"] == order_id, entry
            if entry["task"].startswith("orders.saga."):
                assert entry["saga_id"].startswith("sga_") and entry["step"], entry
    shop_steps = {e.get("step") for e in found["worker-shop"]}
    assert {"reserve_stock", "create_payment"} <= shop_steps, shop_steps


def test_every_log_line_of_every_process_is_json(stack: Stack) -> None:
    for name, process in stack.processes.items():
        lines = [line for line in process.log().splitlines() if line.strip()]
        records = _entries(stack, name)
        assert records, name
        others = [line for line in lines if not line.startswith("{")]
        if name == "api":
            assert not others, (name, others[:5])
        else:  # Celery's banner, printed before logging is set up, and nothing after it
            banner_ends = lines.index(next(line for line in lines if line.startswith("{")))
            assert not [line for line in lines[banner_ends:] if not line.startswith("{")], name
        for entry in records:
            assert {"time", "level", "logger", "message", "request_id"} <= entry.keys(), entry
