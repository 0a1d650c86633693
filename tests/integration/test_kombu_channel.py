"""The kombu Redis channel as this service patches it: one client per channel and pool."""

from __future__ import annotations

from kombu import Connection

from tasks.consumer import patch_redis_channel


def test_a_channel_reuses_its_client_until_its_pool_is_replaced(redis_url: str) -> None:
    patch_redis_channel()
    with Connection(redis_url) as connection:
        channel = connection.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        channel._put("ordersaga-test-queue", {"n": 1})
        channel._put("ordersaga-test-queue", {"n": 2})

        channel._disconnect_pools()  # what a fork or a disconnect does
        second = channel._create_client()
        assert second is not first
        assert second.connection_pool is channel.pool
        assert [channel._get("ordersaga-test-queue")["n"] for _ in range(2)] == [1, 2]
        assert channel._size("ordersaga-test-queue") == 0
