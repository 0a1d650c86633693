"""Fixtures shared by every layer.

Servers: the configured ones (ORDERSAGA_TEST_DATABASE_URL, ORDERSAGA_TEST_REDIS_URL), else the
default local ports if they answer, else throwaway servers started for this run (see
scripts/servers.py). RabbitMQ is the configured one (ORDERSAGA_TEST_RABBITMQ_URL) or a private
node: the queues' names are the service's own, which a RabbitMQ shared with anything else
would mix up. Unit tests never ask for them, so `make test-unit` needs no server.
"""

from __future__ import annotations

import os
import tempfile

# Before anything imports app.metrics: the test process's metrics go to a directory of their
# own (shared with the processes the tests start), never to a running service's.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ordersaga-test-metrics-")

from collections.abc import Iterator

import pytest

from scripts import servers
from tests.support.databases import create_database, drop_database, migrate

TEST_REDIS_DB = 9  # keep clear of a developer's `make run` data on db 0


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    server = servers.ensure_postgres(
        os.environ.get("ORDERSAGA_TEST_DATABASE_URL"), tmp_path_factory.mktemp("postgres")
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: servers.Server) -> Iterator[str]:
    """A fresh database for this session, migrated to head."""
    url = create_database(pg_server.url)
    migrate(url)
    yield url
    drop_database(pg_server.url, url)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    server = servers.ensure_redis(
        os.environ.get("ORDERSAGA_TEST_REDIS_URL"), tmp_path_factory.mktemp("redis")
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rabbitmq_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("ORDERSAGA_TEST_RABBITMQ_URL")
    server = (
        servers.ensure_rabbitmq(configured, tmp_path_factory.mktemp("rabbitmq"))
        if configured
        else servers.start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    )
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: servers.Server) -> str:
    """The test Redis database, emptied once at the start of the session."""
    import redis

    url = redis_server.url
    if not os.environ.get("ORDERSAGA_TEST_REDIS_URL"):
        url = url.rsplit("/", 1)[0] + f"/{TEST_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url
