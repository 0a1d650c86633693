"""What the API needs to know about the broker: is it up, and how deep is each queue."""

from __future__ import annotations

import time
from typing import Any

from kombu import Connection

QUEUES = ("orders", "inventory", "coupons", "payments", "members", "sandbox")


def redis_queue_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps a queue's messages in: one per priority step."""
    from kombu.transport.redis import Channel  # only where the broker is Redis

    return [queue] + [f"{queue}{Channel.sep}{step}" for step in Channel.priority_steps if step]


def broker_answers(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        with Connection(url, connect_timeout=timeout, transport_options={"max_retries": 0}) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            conn.default_channel  # noqa: B018 - opens the channel, which talks to the server
        return True, "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported by name
        return False, f"{type(error).__name__}: {error}"[:200]


def queue_depths(url: str, timeout: float = 2.0) -> dict[str, int]:
    """Messages waiting per queue (for Redis, including Celery's priority sub-queues)."""
    depths: dict[str, int] = {}
    with Connection(url, connect_timeout=timeout, transport_options={"max_retries": 0}) as conn:
        channel = conn.default_channel
        for queue in QUEUES:
            if url.startswith(("redis:", "rediss:")):
                client = channel.client  # type: ignore[attr-defined]
                depths[queue] = sum(int(client.llen(name)) for name in redis_queue_keys(queue))
            else:
                declared = channel.queue_declare(queue=queue, passive=True)
                depths[queue] = int(declared.message_count)
    return depths


class QueueProbe:
    """How deep the queue feeding new sagas is, asked at most every `ttl` seconds per process.

    Used to shed flash-sale load: when the backlog is deeper than the workers drain in reasonable
    time, new purchases get 503 rather than joining an ever-growing queue. Redis brokers only
    (an AMQP broker reports 0: no shedding).
    """

    QUEUE = "inventory"  # every order saga's first step

    def __init__(self, broker_url: str, ttl: float = 0.5) -> None:
        self.broker_url = broker_url
        self.ttl = ttl
        self._client: Any = None
        self._depth = 0
        self._read_at = 0.0

    def depth(self) -> int:
        now = time.monotonic()
        if now - self._read_at < self.ttl or not self.broker_url.startswith(("redis:", "rediss:")):
            return self._depth
        if self._client is None:
            import redis  # only where the broker is Redis

            self._client = redis.Redis.from_url(
                self.broker_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        names = redis_queue_keys(self.QUEUE)
        try:
            pipe = self._client.pipeline(transaction=False)
            for name in names:
                pipe.llen(name)
            self._depth = sum(int(n) for n in pipe.execute())
        except Exception:  # noqa: BLE001 - a broker we cannot ask sheds nothing; relay copes
            self._depth = 0
        self._read_at = now
        return self._depth
