"""A kombu Redis channel of a closed connection raises a connection error, not AttributeError,
so the worker's cleanup and late acks treat it as the broker trouble it is."""

from __future__ import annotations

from typing import Any

import pytest
import redis.exceptions
from kombu.common import ignore_errors
from kombu.transport import redis as kombu_redis

from tasks.consumer import patch_redis_channel


class ClosedTransport:
    """What a channel of a closed connection sees after Redis dropped the worker's connection."""

    client = None
    default_port = 6379


class Connection:
    """What ignore_errors needs: the connection's error classes, as Celery's cleanup passes them."""

    connection_errors = (redis.exceptions.ConnectionError,)
    channel_errors = ()


def test_a_closed_connections_channel_raises_a_connection_error_that_celery_ignores() -> None:
    patch_redis_channel()
    channel: Any = kombu_redis.Channel.__new__(kombu_redis.Channel)
    channel.connection = ClosedTransport()

    with pytest.raises(AttributeError):  # kombu as released
        kombu_redis.Channel._connparams.__wrapped__(channel)  # type: ignore[attr-defined]
    with pytest.raises(redis.exceptions.ConnectionError):  # kombu as this service runs it
        channel._connparams()
    with ignore_errors(Connection()):  # Celery's cleanup and late acks: it does not escape
        channel._connparams()
