"""Two patches to kombu's Redis channel (kombu 5.7), applied once per process.

1. Keep a Celery worker alive through a Redis broker restart.

When Redis drops the worker's connection while it holds unacknowledged messages, kombu (5.7)
still uses channels of the closed connection: Celery's cleanup closes the channel, which tries
to restore its unacked messages; and a task finishing right after the reconnect acks its message
on the old channel. Both build a Redis client from the closed connection, whose `client` is then
None, and fail with AttributeError ("'NoneType' object has no attribute 'hostname"). Celery only
expects connection errors there, so the worker dies ("Unrecoverable error"). Upstream reports
of the same family: celery#8030, celery#9250 and celery#10205.

The patch makes that one spot raise the connection error it really is. Every Celery path
handles that error: the close is ignored, the ack is logged and dropped, and the worker carries
on with its new connection. A message whose ack was lost comes back with Redis' visibility
timeout, and the saga sweep re-drives its saga long before that. Every task is idempotent.

2. One Redis client per channel and connection pool, not one per command. The channel builds a
new `redis.Redis` around its pool for every publish, ack and event (`conn_or_acquire`), and
building one costs more than sending the command: one per published task on every order and
saga step, and one per event a worker sends. The client holds no connection of its own (the
pool does), so one client serves the channel until the channel replaces its pool (after a fork
or a disconnect), and then a new one is made.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from kombu.transport import redis as kombu_redis

_PATCHED = "_ordersaga_patched"
_CLIENT = "_ordersaga_client"


def patch_redis_channel() -> None:
    """Idempotent: patch kombu's Redis channel once per process."""
    channel = kombu_redis.Channel
    if getattr(channel, _PATCHED, False):
        return
    _guard_closed_connections(channel)
    _reuse_clients(channel)
    setattr(channel, _PATCHED, True)


def _guard_closed_connections(channel: Any) -> None:
    original = channel._connparams

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection this channel belonged to is closed")
        return original(self, asynchronous=asynchronous)

    _connparams.__wrapped__ = original  # type: ignore[attr-defined]
    channel._connparams = _connparams


def _reuse_clients(channel: Any) -> None:
    original = channel._create_client

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:  # the channel caches its own asynchronous client already
            return original(self, asynchronous=True)
        pool = self.pool
        client = self.__dict__.get(_CLIENT)
        if client is None or client.connection_pool is not pool:
            client = self.__dict__[_CLIENT] = original(self)
        return client

    _create_client.__wrapped__ = original  # type: ignore[attr-defined]
    channel._create_client = _create_client
