"""Nothing is lost: a broker that is down or loses every message, a worker killed with SIGKILL
mid-step, and a fault that outlasts its retries (then an operator resumes the saga).

Each test gets its own deployment (private Redis, fresh database, real processes), once with
Redis as the broker and once with RabbitMQ."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from scripts.servers import Server, free_port
from tests.support import brokers
from tests.support.env import REPO, process_env
from tests.support.processes import wait_until
from tests.support.stack import BROKERS, Stack


@pytest.fixture(params=BROKERS)
def stack(pg_server: Server, request: pytest.FixtureRequest) -> Iterator[Stack]:
    stack = Stack(pg_server.url, request.param)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.close()


def _place_many(stack: Stack, goods_id: str, buyers: int) -> list[str]:
    users = [stack.user() for _ in range(buyers)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda u: stack.place(u, [(goods_id, 1)]), users))
    assert [r.status_code for r in responses] == [202] * buyers
    return [r.json()["id"] for r in responses]


def _assert_settled_and_conserved(stack: Stack, order_ids: list[str], goods_id: str, stock: int) -> None:
    statuses = [stack.wait_order(order_id, timeout=90)["status"] for order_id in order_ids]
    assert set(statuses) <= {"AWAITING_PAYMENT", "CANCELLED"}
    assert statuses.count("AWAITING_PAYMENT") == min(stock, len(order_ids))
    assert stack.sql("SELECT count(*) AS n FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')")[0].n == 0
    goods = stack.stock(goods_id)
    assert goods["stock_available"] + goods["stock_reserved"] + goods["stock_sold"] == stock
    assert goods["stock_reserved"] == statuses.count("AWAITING_PAYMENT")


def test_an_order_placed_while_the_broker_is_down_proceeds_when_it_returns(stack: Stack) -> None:
    stack.start_worker()
    stack.start_beat()
    goods, buyer = stack.goods(stock=3), stack.user()

    stack.broker.kill()
    response = stack.place(buyer, [(goods["id"], 1)])  # how long it takes: bench/broker_down.py
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    # The relay finds the broker down after the answer, and leaves the message to the sweep.
    wait_until(lambda: _unsent(stack) == 1, timeout=30, what="the message to be left unsent")
    assert stack.order(order_id)["status"] == "PENDING"

    stack.broker.start()  # the message exists only in the outbox
    order = stack.wait_order(order_id, timeout=90)
    assert order["status"] == "AWAITING_PAYMENT", order
    # The worker left running through the restart consumes new work afterwards too.
    second = stack.place(buyer, [(goods["id"], 1)]).json()["id"]
    assert stack.wait_order(second, timeout=60)["status"] == "AWAITING_PAYMENT"


def test_a_worker_killed_mid_step_loses_nothing(stack: Stack) -> None:
    goods = stack.goods(stock=15)
    order_ids = _place_many(stack, goods["id"], 20)  # no worker yet: all twenty wait in the broker
    stack.start_worker()

    def some_progress() -> bool:
        return stack.sql("SELECT count(*) AS n FROM saga_steps WHERE status = 'SUCCEEDED'")[0].n >= 4

    wait_until(some_progress, timeout=60, interval=0.02, what="the worker to make progress")
    stack.kill("worker")  # SIGKILL to the whole worker: parent and pool children
    unfinished = stack.sql("SELECT count(*) AS n FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')")[0].n
    assert unfinished > 0, "every saga finished before the kill; the test proved nothing"

    stack.start_worker()
    stack.start_beat()
    _assert_settled_and_conserved(stack, order_ids, goods["id"], 15)


def test_the_sweep_finishes_sagas_whose_messages_the_broker_lost(stack: Stack) -> None:
    goods = stack.goods(stock=6)
    order_ids = _place_many(stack, goods["id"], 8)  # no worker: the messages sit in the broker

    def in_broker() -> bool:
        return brokers.waiting(stack.broker.url, "inventory") == 8

    wait_until(in_broker, timeout=30, what="eight messages in the broker")
    assert _unsent(stack) == 0
    brokers.lose_everything(stack.broker.url)

    stack.start_worker()
    stack.start_beat()
    _assert_settled_and_conserved(stack, order_ids, goods["id"], 6)


def _metric(stack: Stack, name: str) -> float:
    text = stack.call("GET", "/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


# Retries and the operator's resume do not depend on the broker (a retry's delay is proven on
# RabbitMQ by the chaos run, whose steps retry under every fault).
@pytest.mark.parametrize("stack", ["redis"], indirect=True)
def test_a_fault_that_outlasts_its_retries_fails_the_saga_until_an_operator_retries(stack: Stack) -> None:
    # The provider is unreachable from this worker: every create_payment attempt fails.
    stack.start_worker(ORDERSAGA_PUBLIC_URL=f"http://127.0.0.1:{free_port()}")
    stack.start_beat()
    goods, buyer = stack.goods(stock=5), stack.user()
    first = stack.place(buyer, [(goods["id"], 1)]).json()
    second = stack.place(buyer, [(goods["id"], 1)]).json()

    def failed(order: dict[str, object]) -> dict[str, object] | None:
        saga = stack.saga(order["saga"]["id"])  # type: ignore[index]
        return saga if saga["status"] == "FAILED" else None

    for order in (first, second):
        saga = wait_until(lambda o=order: failed(o), timeout=60, what=f"the saga to fail\n{stack.logs()}")
        step = next(s for s in saga["steps"] if s["name"] == "create_payment")
        assert (step["status"], step["attempts"]) == ("FAILED", 3)  # the first try and two retries
        assert "ProviderUnavailable" in step["error"]
        assert stack.order(order["id"])["status"] == "PENDING"
    listed = stack.ok("GET", "/api/v1/admin/sagas?status=FAILED")["items"]
    assert {s["order_id"] for s in listed} == {first["id"], second["id"]}
    assert _metric(stack, "ordersaga_sagas_failed_total") >= 2

    running = stack.ok("GET", "/api/v1/admin/sagas?status=COMPENSATED")["items"]
    assert running == []
    assert (
        stack.call("POST", f"/api/v1/admin/sagas/{first['saga']['id']}/retry", buyer["token"]).status_code
        == 403
    )

    # The fault is gone: a worker that can reach the provider.
    stack.stop("worker")
    stack.start_worker()
    retried = stack.call("POST", f"/api/v1/admin/sagas/{first['saga']['id']}/retry")
    assert retried.status_code == 202, retried.text
    assert stack.wait_order(first["id"])["status"] == "AWAITING_PAYMENT"
    again = stack.call("POST", f"/api/v1/admin/sagas/{first['saga']['id']}/retry")
    assert again.status_code == 409 and again.json()["code"] == "conflict"

    cli = [sys.executable, "-m", "celery", "-A", "celery_worker", "saga"]
    env = process_env(stack.env)
    shown = subprocess.run(
        [*cli, "show", second["saga"]["id"]], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "FAILED" in shown.stdout and "create_payment" in shown.stdout
    listed_cli = subprocess.run(
        [*cli, "list", "--status", "FAILED"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert second["saga"]["id"] in listed_cli.stdout
    result = subprocess.run(
        [*cli, "retry", second["saga"]["id"]], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert stack.wait_order(second["id"])["status"] == "AWAITING_PAYMENT"
    refused = subprocess.run(
        [*cli, "retry", second["saga"]["id"]], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and "only a FAILED saga" in refused.stderr


def test_a_worker_busy_through_broker_restarts_survives_and_takes_new_work(stack: Stack) -> None:
    """The worker holds unacknowledged messages each time the broker goes away (celery#8030
    family). Redis comes back empty (the sweep re-drives), RabbitMQ with its durable queues."""
    stack.start_worker()
    stack.start_beat()
    goods = stack.goods(stock=100)
    placed: list[str] = []
    for _ in range(4):
        placed += _place_many(stack, goods["id"], 8)
        stack.broker.restart()
    assert stack.processes["worker"].running, stack.processes["worker"].log()[-3000:]
    placed += _place_many(stack, goods["id"], 4)
    _assert_settled_and_conserved(stack, placed, goods["id"], 100)
    assert stack.processes["worker"].running


def _unsent(stack: Stack) -> int:
    count: int = stack.sql("SELECT count(*) AS n FROM outbox_messages WHERE sent_at IS NULL")[0].n
    return count
