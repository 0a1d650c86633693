"""What changes with RabbitMQ as the broker: durable quorum queues behind topic exchanges (what
native delayed delivery needs), publisher confirms, whole seconds of delay rounded up, and no
priorities. The behaviour itself is proven on a real RabbitMQ by the integration tests that take
the broker as a parameter (tests/support/stack.py BROKERS) and the chaos run."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from app.broker import QUEUES, task_queues
from app.models.outbox import OutboxMessage
from app.relay import CONFIRM_TIMEOUT_SECONDS, OutboxRelay
from app.timeutil import utcnow
from tasks.celery_app import celery_config
from tests.support.env import settings_for

AMQP = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/0"


def test_on_rabbitmq_each_queue_is_a_quorum_queue_behind_a_topic_exchange() -> None:
    queues = task_queues(AMQP)
    assert [q.name for q in queues] == list(QUEUES)
    for queue in queues:
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (
            queue.name,
            "topic",
            queue.name,
        )
        assert queue.durable


def test_on_redis_the_queues_are_plain_lists() -> None:
    assert all(q.queue_arguments is None for q in task_queues(REDIS))


def test_rabbitmq_confirms_every_publish_and_redis_keeps_its_visibility_timeout() -> None:
    amqp = celery_config(settings_for("sqlite://", AMQP, REDIS))
    assert amqp["broker_transport_options"] == {"confirm_publish": True}
    redis = celery_config(settings_for("sqlite://", REDIS))
    assert redis["broker_transport_options"]["visibility_timeout"] >= 3600


def _relay(url: str) -> OutboxRelay:
    return OutboxRelay(None, SimpleNamespace(conf=SimpleNamespace(broker_url=url)))  # type: ignore[arg-type]


def _message(eta_in: float | None, priority: int | None = 6) -> OutboxMessage:
    eta = utcnow() + timedelta(seconds=eta_in) if eta_in is not None else None
    return OutboxMessage(task="t", kwargs={}, queue="payments", eta=eta, priority=priority)


def _delivery(url: str, message: OutboxMessage) -> dict[str, Any]:
    return _relay(url)._delivery(message)


def test_on_rabbitmq_a_delay_is_whole_seconds_rounded_up_and_never_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = utcnow()
    monkeypatch.setattr("app.relay.utcnow", lambda: now)  # the same instant as _message's
    monkeypatch.setattr(__name__ + ".utcnow", lambda: now)
    assert _delivery(AMQP, _message(0.3))["countdown"] == 1
    assert _delivery(AMQP, _message(5.2))["countdown"] == 6
    assert _delivery(AMQP, _message(-2.0))["countdown"] is None  # due already: at once
    assert _delivery(AMQP, _message(None)) == {"confirm_timeout": CONFIRM_TIMEOUT_SECONDS}


def test_priority_goes_to_redis_only() -> None:
    assert "priority" not in _delivery(AMQP, _message(None))
    message = _message(3.0)
    assert _delivery(REDIS, message) == {"eta": message.eta, "priority": 6}
