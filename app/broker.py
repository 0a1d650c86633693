"""The broker: its queues on Redis and on RabbitMQ, and what the API needs to know of it (is it
up, how deep is each queue).

On RabbitMQ the queues are durable quorum queues, each behind a topic exchange of its name:
Celery's native delayed delivery (ETA and countdown messages wait in the broker, not in a
worker's memory) needs quorum queues reached through topic exchanges. Quorum queues have no
priorities (RabbitMQ 3.x), so a message's priority is a Redis feature only.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

QUEUES = ("orders", "inventory", "coupons", "payments", "members", "sandbox")

_declared: set[str] = set()  # brokers this process has declared the delayed-delivery topology on
_declaring = threading.Lock()


def is_redis(url: str) -> bool:
    return url.startswith(("redis:", "rediss:"))


def task_queues(url: str) -> list[Queue]:
    """Celery's queues for the broker at `url`."""
    if is_redis(url):
        return [Queue(name, routing_key=name) for name in QUEUES]
    return [
        Queue(
            name,
            Exchange(name, type="topic"),
            routing_key=name,
            queue_arguments={"x-queue-type": "quorum"},
        )
        for name in QUEUES
    ]


def declare_delayed_delivery(connection: Connection, queues: list[Queue]) -> None:
    """On RabbitMQ, declare (once per process) what a delayed message travels through: the
    delay exchanges and queues, and each of `queues` bound to them.

    Workers declare it when they start; a process that sends a delayed message before any
    worker ever started (the API, beat) must too, or the broker refuses the message (with
    publisher confirms) or drops it (without). Declaring is idempotent."""
    url = connection.as_uri()
    if is_redis(url) or url in _declared:
        return
    with _declaring:
        if url in _declared:
            return
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")
        channel = connection.default_channel
        for queue in queues:
            queue.bind(channel).declare()
            bind_queue_to_native_delayed_delivery_exchange(connection, queue)
        _declared.add(url)


def redis_queue_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps a queue's messages in: one per priority step."""
    from kombu.transport.redis import Channel  # only where the broker is Redis

    return [queue] + [f"{queue}{Channel.sep}{step}" for step in Channel.priority_steps if step]


def _asking_options(url: str, timeout: float) -> dict[str, Any]:
    """Transport options for a short question to the broker: no retries, and no wait longer than
    `timeout` for an answer either, so that a broker that accepts connections but hangs cannot
    hold the sweep or a request."""
    if is_redis(url):
        return {"max_retries": 0, "socket_timeout": timeout, "socket_connect_timeout": timeout}
    return {"max_retries": 0, "read_timeout": timeout, "write_timeout": timeout}


def broker_answers(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        with Connection(
            url, connect_timeout=timeout, transport_options=_asking_options(url, timeout)
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            conn.default_channel  # noqa: B018 - opens the channel, which talks to the server
        return True, "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported by name
        return False, f"{type(error).__name__}: {error}"[:200]


def queue_depths(url: str, timeout: float = 2.0) -> dict[str, int]:
    """Messages waiting per queue (for Redis, including Celery's priority sub-queues; for
    RabbitMQ, those ready for a consumer: delayed ones wait elsewhere until due)."""
    depths: dict[str, int] = {}
    with Connection(url, connect_timeout=timeout, transport_options=_asking_options(url, timeout)) as conn:
        for queue in QUEUES:
            if is_redis(url):
                client = conn.default_channel.client  # type: ignore[attr-defined]
                depths[queue] = sum(int(client.llen(name)) for name in redis_queue_keys(queue))
                continue
            channel = conn.channel()  # a queue not declared yet closes the channel it was asked on
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except conn.channel_errors:
                depths[queue] = 0  # no worker or sender has declared it yet: nothing in it
            finally:
                with contextlib.suppress(*conn.channel_errors):
                    channel.close()
    return depths


class QueueProbe:
    """How deep the queue feeding new sagas is, asked at most every `ttl` seconds per process.

    Used to shed flash-sale load: when the backlog is deeper than the workers drain in reasonable
    time, new purchases get 503 rather than joining an ever-growing queue. A broker that cannot
    be asked reports 0: it sheds nothing, and the relay copes with what it cannot send.
    """

    QUEUE = "inventory"  # every order saga's first step

    def __init__(self, broker_url: str, ttl: float = 0.5) -> None:
        self.broker_url = broker_url
        self.ttl = ttl
        self._client: Any = None  # a Redis client, or a kombu connection to RabbitMQ
        self._asking = threading.Lock()  # a kombu connection is not for two threads at once
        self._depth = 0
        self._read_at = 0.0

    def depth(self) -> int:
        now = time.monotonic()
        if now - self._read_at < self.ttl:
            return self._depth
        try:
            self._depth = self._redis_depth() if is_redis(self.broker_url) else self._amqp_depth()
        except Exception:  # noqa: BLE001 - see the class's docstring
            self._depth = 0
            if not is_redis(self.broker_url):
                self._client = None  # connect again next time
        self._read_at = now
        return self._depth

    def _redis_depth(self) -> int:
        if self._client is None:
            import redis  # only where the broker is Redis

            self._client = redis.Redis.from_url(
                self.broker_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        pipe = self._client.pipeline(transaction=False)
        for name in redis_queue_keys(self.QUEUE):
            pipe.llen(name)
        return sum(int(n) for n in pipe.execute())

    def _amqp_depth(self) -> int:
        if not self._asking.acquire(timeout=self.ttl):
            return self._depth  # another thread is asking: its answer will do
        try:
            if self._client is None:
                self._client = Connection(
                    self.broker_url,
                    connect_timeout=0.5,
                    transport_options=_asking_options(self.broker_url, 0.5),
                )
            channel = self._client.channel()
            try:
                return int(channel.queue_declare(queue=self.QUEUE, passive=True).message_count)
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
        finally:
            self._asking.release()
