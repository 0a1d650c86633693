"""A real `celery -A celery_worker worker` consumes every queue, inside the Flask app context."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.broker import QUEUES
from app.celery_app import celery_config
from tests.support.env import service_env, settings_for
from tests.support.processes import Process, celery_worker, wait_until


@pytest.fixture
def worker(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Process]:
    process = celery_worker(service_env(pg_url, redis_url), tmp_path).start()
    yield process
    process.stop()


def test_a_task_on_each_queue_runs_in_the_app_context(worker: Process, pg_url: str, redis_url: str) -> None:
    from celery import Celery

    sender = Celery("test-sender")
    sender.config_from_object(celery_config(settings_for(pg_url, redis_url)))
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
