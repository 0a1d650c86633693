"""A real `celery -A celery_worker worker` consumes every queue, inside the Flask app context,
with Redis and with RabbitMQ as the broker."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.broker import QUEUES
from tasks.celery_app import celery_config
from tests.support.env import service_env, settings_for
from tests.support.processes import Process, celery_worker, wait_until
from tests.support.stack import BROKERS


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    return redis_url if request.param == "redis" else str(request.getfixturevalue("rabbitmq_url"))


@pytest.fixture
def worker(pg_url: str, broker_url: str, redis_url: str, tmp_path: Path) -> Iterator[Process]:
    process = celery_worker(service_env(pg_url, broker_url, redis_url), tmp_path).start()
    yield process
    process.stop()


def test_a_task_on_each_queue_runs_in_the_app_context(
    worker: Process, pg_url: str, broker_url: str, redis_url: str
) -> None:
    from celery import Celery

    sender = Celery("test-sender")
    sender.config_from_object(celery_config(settings_for(pg_url, broker_url, redis_url)))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    tokens = {queue: secrets.token_hex(8) for queue in QUEUES}
    for queue, token in tokens.items():
        sender.send_task("ops.ping", kwargs={"token": token}, queue=queue)

    for queue, token in tokens.items():
        raw = wait_until(
            lambda t=token: client.get(f"ordersaga:ping:{t}"),
            timeout=60,
            what=f"ping on {queue}\n{worker.log()}",
        )
        answer = json.loads(raw)
        assert answer == {**answer, "queue": queue, "app_context": True, "app_name": "ordersaga"}
    assert worker.running


def _nice_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5); the split dropped the first two


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def test_a_chain_of_hops_runs_each_link_and_counts_itself_done(
    worker: Process, pg_url: str, broker_url: str, redis_url: str
) -> None:
    from celery import Celery

    sender = Celery("test-sender")
    sender.config_from_object(celery_config(settings_for(pg_url, broker_url, redis_url)))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    token = secrets.token_hex(8)
    for _ in range(3):
        sender.send_task("ops.hop", args=(token, 4, "orders"), queue="orders")
    wait_until(
        lambda: client.get(f"ordersaga:hops:{token}") == "3", timeout=60, what=f"3 chains\n{worker.log()}"
    )
    assert worker.log().count("Task ops.hop[") >= 3 * 4


def test_the_worker_and_its_pool_run_at_the_configured_lower_priority(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    process = celery_worker(
        service_env(pg_url, redis_url, ORDERSAGA_WORKER_NICE="7"), tmp_path, concurrency=2
    ).start()
    try:
        assert process.proc is not None
        pid = process.proc.pid
        pool = wait_until(
            lambda: len(_children(pid)) >= 2 and _children(pid),
            timeout=60,
            what=f"the worker's pool\n{process.log()}",
        )
        assert [_nice_of(p) for p in [pid, *pool]] == [7, 7, 7]
        # It leads its own session (start_new_session), so its autogroup is lowered too.
        assert Path(f"/proc/{pid}/autogroup").read_text().split()[-1] == "7"
    finally:
        process.stop()
