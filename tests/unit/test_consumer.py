"""The worker's consumer survives kombu's AttributeError when it closes a broken connection."""

from __future__ import annotations

from typing import Any

import pytest
from celery.worker.consumer import Consumer
from kombu.common import ignore_errors

from tasks.consumer import ResilientConsumer


class BrokenConnection:
    """What kombu's Redis connection does when closed after the broker dropped it while the
    worker held unacknowledged messages (seen in this project's own test run)."""

    connection_errors: tuple[type[Exception], ...] = (ConnectionError,)
    channel_errors: tuple[type[Exception], ...] = ()
    closed = False

    def close(self) -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")


def celery_cleanup(self: Any, exc: Exception) -> None:
    """Celery 5.7's cleanup of a broken connection, reduced to the step that fails."""
    connection, self.connection = self.connection, None
    if connection:
        ignore_errors(connection, connection.close)


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(Consumer, "on_connection_error_after_connected", celery_cleanup)
    instance = ResilientConsumer.__new__(ResilientConsumer)
    instance.connection = BrokenConnection()
    return instance


def test_plain_cleanup_dies_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Consumer, "on_connection_error_after_connected", celery_cleanup)
    plain = Consumer.__new__(Consumer)
    plain.connection = BrokenConnection()
    with pytest.raises(AttributeError):
        plain.on_connection_error_after_connected(ConnectionError("Connection closed by server."))


def test_the_resilient_consumer_goes_on_to_reconnect(consumer: Any) -> None:
    consumer.on_connection_error_after_connected(ConnectionError("Connection closed by server."))
    assert consumer.connection is None  # released: Celery's restart then opens a new one
