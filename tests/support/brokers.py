"""What tests do to a broker behind the service's back, on Redis and on RabbitMQ alike: count
what waits in a queue, fill one with a backlog, lose every message, take out one task's
messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis
from kombu import Connection
from kombu.transport.native_delayed_delivery import MAX_LEVEL, level_name

from app.broker import QUEUES, is_redis, queue_depths, redis_queue_keys, task_queues

DELAY_QUEUES = [level_name(level) for level in range(MAX_LEVEL + 1)]  # RabbitMQ's delayed messages


def waiting(url: str, queue: str) -> int:
    """Messages in `queue` ready for a worker."""
    return queue_depths(url)[queue]


@contextlib.contextmanager
def backlog(url: str, queue: str, messages: int) -> Iterator[None]:
    """`queue` holds `messages` more messages (no task's: no worker may consume it) while the
    block runs; it is emptied after."""
    if is_redis(url):
        client = redis.Redis.from_url(url)
        client.delete(queue)
        client.rpush(queue, *[b"{}"] * messages)
        try:
            yield
        finally:
            client.delete(queue)
            client.close()
        return
    declared = next(q for q in task_queues(url) if q.name == queue)
    # Confirmed, so that each message is in the queue before the block runs.
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        for _ in range(messages):
            producer.publish({}, exchange=declared.exchange, routing_key=queue, declare=[declared])
        try:
            yield
        finally:
            connection.default_channel.queue_purge(queue)


def lose_everything(url: str) -> None:
    """Every message the broker holds is gone, delayed ones included, as after a crash of a
    broker that keeps nothing."""
    if is_redis(url):
        client = redis.Redis.from_url(url)
        client.flushall()
        client.close()
        return
    with Connection(url) as connection:
        for name in (*QUEUES, *DELAY_QUEUES):
            channel = connection.channel()
            with contextlib.suppress(*connection.channel_errors):
                channel.queue_purge(name)
            with contextlib.suppress(*connection.channel_errors):
                channel.close()


def remove(url: str, queue: str, task: str) -> int:
    """Take out of the broker every message of `task` waiting in `queue` (or, on RabbitMQ, in
    a delay queue on its way there); returns how many. No worker may be consuming `queue`."""
    if is_redis(url):
        client = redis.Redis.from_url(url)
        removed = 0
        for key in redis_queue_keys(queue):
            for message in client.lrange(key, 0, -1):
                if task.encode() in message:
                    removed += int(client.lrem(key, 0, message))
        client.delete("unacked", "unacked_index")  # what a stopped worker held went back to its queue
        client.close()
        return removed
    removed = 0
    with Connection(url) as connection:
        channel = connection.channel()  # what it takes and does not ack goes back when it closes
        # A delayed message moves down the levels to its queue: scanned the same way, none
        # can pass from a level not looked at yet to one looked at already.
        for name in (*reversed(DELAY_QUEUES), queue):
            while (message := channel.basic_get(name, no_ack=False)) is not None:
                if message.headers.get("task") == task:
                    channel.basic_ack(message.delivery_tag)
                    removed += 1
        channel.close()
    return removed
