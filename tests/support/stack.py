"""A whole deployment for integration tests: a private Redis (so a test may stop or flush it), a
fresh PostgreSQL database, gunicorn (which also serves the sandbox provider), celery workers and
beat, each a real process. Helpers speak the contract over HTTP.

The broker is the private Redis, or with `broker="amqp"` a private RabbitMQ node (Redis then
holds only the flash-sale gate and the caches)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from scripts.servers import Server, free_port, start_rabbitmq, start_redis
from tests.support.api import ADMIN, bearer, unique
from tests.support.databases import create_database, drop_database, migrate
from tests.support.env import service_env
from tests.support.processes import Process, celery_beat, celery_worker, gunicorn, wait_until

BROKERS = ("redis", "amqp")  # what the tests that involve the broker run on, each
TERMINAL_OR_WAITING = ("AWAITING_PAYMENT", "CONFIRMED", "CANCELLED", "REFUNDED")
FAST = {
    "ORDERSAGA_SWEEP_INTERVAL_SECONDS": "1",
    "ORDERSAGA_SAGA_STALE_SECONDS": "3",
    "ORDERSAGA_STEP_MAX_RETRIES": "2",
    "ORDERSAGA_STEP_RETRY_BACKOFF_SECONDS": "1",
}


class Stack:
    def __init__(self, pg_server_url: str, broker: str = "redis", **env: str) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ordersaga-stack-"))
        self.pg_server_url = pg_server_url
        self.redis: Server = start_redis(self.workdir / "redis")
        self.broker: Server = self.redis if broker == "redis" else start_rabbitmq(self.workdir / "rabbitmq")
        self.database_url = create_database(pg_server_url, prefix="ordersaga_stack")
        migrate(self.database_url)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = service_env(
            self.database_url,
            self.broker.url,
            self.redis.url,
            ORDERSAGA_PUBLIC_URL=self.base_url,
            **{**FAST, **env},
        )
        self.http = requests.Session()
        self.db = create_engine(self.database_url, pool_pre_ping=True)
        self.processes: dict[str, Process] = {}

    # -- processes ----------------------------------------------------------------------------

    def start_api(self) -> Process:
        api = self.processes["api"] = gunicorn(self.env, self.workdir, self.port).start()
        wait_until(self._ready, timeout=60, what=f"the API\n{api.log()}")
        return api

    def start_worker(
        self, name: str = "worker", queues: list[str] | None = None, concurrency: int = 2, **env: str
    ) -> Process:
        worker = celery_worker(
            {**self.env, **env}, self.workdir, queues=queues, concurrency=concurrency, name=name
        )
        self.processes[name] = worker.start()
        return worker

    def start_beat(self) -> Process:
        beat = self.processes["beat"] = celery_beat(self.env, self.workdir).start()
        return beat

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.stop()

    def kill(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.kill()

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        self.http.close()
        self.db.dispose()
        self.redis.stop()
        self.broker.stop()
        drop_database(self.pg_server_url, self.database_url)

    def logs(self) -> str:
        return "\n".join(f"===== {n}\n{p.log()[-6000:]}" for n, p in self.processes.items())

    def _ready(self) -> bool:
        try:
            return self.http.get(self.url("/healthz"), timeout=2).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # a worker listens before its app loads
            return False

    # -- HTTP ---------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {**(bearer(token) if token else ADMIN), **kwargs.pop("headers", {})}
        return self.http.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self.call(method, path, token, **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def user(self) -> dict[str, Any]:
        return self.ok("POST", "/api/v1/users", json={"name": "Buyer", "email": f"{unique('b')}@example.com"})

    def goods(self, stock: int, price_cents: int = 1000) -> dict[str, Any]:
        body = {"sku": unique("sku"), "name": "Tea", "price_cents": price_cents, "stock": stock}
        return self.ok("POST", "/api/v1/goods", json=body)

    def coupon(self, user: dict[str, Any], amount_off_cents: int = 300, **extra: Any) -> dict[str, Any]:
        body = {"amount_off_cents": amount_off_cents, **extra}
        return self.ok("POST", f"/api/v1/users/{user['id']}/coupons", json=body)

    def place(
        self, user: dict[str, Any], lines: list[tuple[str, int]], coupon_id: str | None = None, **kwargs: Any
    ) -> requests.Response:
        body: dict[str, Any] = {"items": [{"goods_id": g, "quantity": q} for g, q in lines]}
        if coupon_id:
            body["coupon_id"] = coupon_id
        return self.call("POST", "/api/v1/orders", user["token"], json=body, **kwargs)

    def order(self, order_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/v1/orders/{order_id}")

    def stock(self, goods_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/v1/goods/{goods_id}")

    def saga(self, saga_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/v1/admin/sagas/{saga_id}")

    def wait_order(
        self, order_id: str, statuses: tuple[str, ...] = TERMINAL_OR_WAITING, timeout: float = 60
    ) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            order = self.order(order_id)
            return order if order["status"] in statuses else None

        return wait_until(
            settled, timeout=timeout, what=f"order {order_id} to reach {statuses}\n{self.logs()}"
        )

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.db.connect() as connection:
            return list(connection.execute(text(query), params))


@contextmanager
def running_stack(pg_server_url: str, broker: str = "redis", **env: str) -> Iterator[Stack]:
    """A whole deployment with the API, a worker on every queue, and beat."""
    stack = Stack(pg_server_url, broker, **env)
    try:
        stack.start_api()
        stack.start_worker()
        stack.start_beat()
        yield stack
    finally:
        stack.close()


SANDBOX_KEY = "test-sandbox-api-key"


def pay_at_provider(stack: Stack, order: dict[str, Any], outcome: str = "pay") -> dict[str, Any]:
    """The buyer pays (or declines) at the sandbox provider, through its API."""
    return stack.ok(
        "POST", f"/sandbox/api/payments/{order['payment']['provider_payment_id']}/{outcome}", SANDBOX_KEY
    )


def at_provider(stack: Stack, order: dict[str, Any]) -> str:
    body = stack.ok("GET", f"/sandbox/api/payments/{order['payment']['provider_payment_id']}", SANDBOX_KEY)
    return str(body["status"])


def send_webhook(
    stack: Stack, order: dict[str, Any], kind: str = "payment.succeeded", event_id: str | None = None
) -> Any:
    from tests.support.webhooks import URL, event, signed

    raw, headers = signed(event(order["payment"], kind, event_id or f"evt_{order['id']}_{kind}"))
    return stack.http.post(stack.url(URL), data=raw, headers=headers, timeout=30)
