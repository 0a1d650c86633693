"""What the API needs to know about the broker: is it up, and how deep is each queue."""

from __future__ import annotations

from kombu import Connection

QUEUES = ("orders", "inventory", "coupons", "payments", "members", "sandbox")


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
                names = {channel._q_for_pri(queue, p) for p in channel.priority_steps}  # type: ignore[attr-defined]
                depths[queue] = sum(int(client.llen(name)) for name in names)
            else:
                declared = channel.queue_declare(queue=queue, passive=True)
                depths[queue] = int(declared.message_count)
    return depths
