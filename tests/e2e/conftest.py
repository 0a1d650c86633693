"""The whole stack over HTTP: gunicorn and a celery worker on real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from scripts.servers import free_port
from tests.support.databases import truncate_all
from tests.support.env import service_env
from tests.support.processes import Process, celery_worker, gunicorn, wait_until


@dataclass
class Stack:
    base_url: str
    api: Process
    worker: Process
    http: requests.Session

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@pytest.fixture(scope="module")
def stack(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs: Path = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = service_env(pg_url, redis_url, ORDERSAGA_PUBLIC_URL=f"http://127.0.0.1:{port}")
    api = gunicorn(env, logs, port).start()
    worker = celery_worker(env, logs).start()
    http = requests.Session()
    stack = Stack(f"http://127.0.0.1:{port}", api, worker, http)

    def ready() -> bool:
        try:
            return http.get(stack.url("/readyz"), timeout=2).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # a worker listens before the app loads
            return False

    try:
        wait_until(ready, timeout=60, what=f"the API to be ready\n{api.log()}")
        yield stack
    finally:
        http.close()
        api.stop()
        worker.stop()
        truncate_all(pg_url)
