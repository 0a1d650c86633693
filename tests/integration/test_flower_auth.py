"""Flower as `celery -A celery_worker flower` starts it: outside development it refuses anyone
without the operator's credentials, and it keeps its state in its database across restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scripts.servers import free_port
from tests.support.env import ADMIN_TOKEN, service_env
from tests.support.processes import Process, celery_flower, wait_until


def _flower(tmp_path: Path, pg_url: str, redis_url: str, env: str, **extra: str) -> tuple[Process, str]:
    port = free_port()
    environment = service_env(
        pg_url, redis_url, ORDERSAGA_ENV=env, FLOWER_DB=str(tmp_path / "flower.db"), **extra
    )
    process = celery_flower(environment, tmp_path, port, name=f"flower-{env}").start()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            requests.get(f"{url}/healthcheck", timeout=2)
        except requests.ConnectionError:
            return False
        return True

    wait_until(answers, timeout=60, what=f"Flower\n{process.log()}")
    return process, url


@pytest.fixture
def production(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[tuple[Process, str]]:
    process, url = _flower(tmp_path, pg_url, redis_url, "production")
    yield process, url
    process.stop()


def test_in_production_flower_refuses_a_request_without_the_operators_credentials(
    production: tuple[Process, str],
) -> None:
    _, url = production
    for path in ("/", "/api/workers", "/tasks"):
        assert requests.get(url + path, timeout=10).status_code == 401, path
        wrong = requests.get(url + path, auth=("operator", "not-the-token"), timeout=10)
        assert wrong.status_code == 401, path
        assert requests.get(url + path, auth=("operator", ADMIN_TOKEN), timeout=10).status_code == 200, path


def test_flower_keeps_its_state_in_its_database(production: tuple[Process, str], tmp_path: Path) -> None:
    process, _ = production
    process.stop()  # Flower saves its state as it stops
    assert list(tmp_path.glob("flower.db*")), process.log()


def test_in_development_flower_needs_no_credentials(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    process, url = _flower(tmp_path, pg_url, redis_url, "development")
    try:
        assert requests.get(url + "/", timeout=10).status_code == 200
    finally:
        process.stop()
