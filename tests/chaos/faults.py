"""The faults a chaos run injects into its deployment, each undone after it has lasted.

A fault runs in its own thread, so that several may overlap as the plan has them; `settle`
undoes whatever is still in effect once the run's time is up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from scripts.servers import Server
from tests.chaos import plan
from tests.chaos.proxy import FAIL, HANG, PASS, ProviderProxy
from tests.support.stack import Stack

# Each worker serves its own queues, as the design asks: the shop's steps and the provider's
# webhooks on one, the coupon and member services on the other.
WORKERS = {
    "worker-shop": ["orders", "inventory", "payments", "sandbox"],
    "worker-services": ["coupons", "members"],
}


class Injector:
    def __init__(
        self, stack: Stack, postgres: Server, proxy: ProviderProxy, worker_env: dict[str, str]
    ) -> None:
        self.stack = stack
        self.postgres = postgres
        self.proxy = proxy
        self.worker_env = worker_env
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()  # one restart of a given server at a time
        self.redis_lock = threading.Lock()  # Redis's, and the broker's (one server on Redis)
        self.threads: list[threading.Thread] = []
        self.outages = 0  # provider faults in effect; the proxy passes again when none is
        self.log: list[str] = []

    def start_workers(self) -> None:
        for name, queues in WORKERS.items():
            self.stack.start_worker(name, queues=queues, **self.worker_env)

    def inject(self, fault: plan.Fault) -> None:
        actions: dict[str, Callable[[plan.Fault], None]] = {
            plan.KILL_WORKER: self._kill_worker,
            plan.RESTART_REDIS: self._restart_redis,
            plan.RESTART_POSTGRES: self._restart_postgres,
            plan.DROP_CONNECTIONS: self._drop_connections,
            plan.STOP_BROKER: self._stop_broker,
            plan.PROVIDER_5XX: lambda f: self._provider_down(f, FAIL),
            plan.PROVIDER_HANGS: lambda f: self._provider_down(f, HANG),
        }
        thread = threading.Thread(target=self._run, args=(actions[fault.kind], fault), daemon=True)
        self.threads.append(thread)
        thread.start()

    def settle(self) -> None:
        """Wait for every fault to be undone; then everything runs as it should."""
        for thread in self.threads:
            thread.join(60)
        self.proxy.mode = PASS
        for server in (self.stack.redis, self.stack.broker):
            if not server.running:
                server.start()
        if not self.postgres.running:
            self.postgres.start()
        for name, queues in WORKERS.items():
            if name not in self.stack.processes:
                self.stack.start_worker(name, queues=queues, **self.worker_env)

    def _run(self, action: Callable[[plan.Fault], None], fault: plan.Fault) -> None:
        started = time.monotonic()
        action(fault)
        with self.lock:
            self.injected[fault.kind] += 1
            self.log.append(f"{fault.at:8.1f}s {fault.kind} ({time.monotonic() - started:.1f}s)")

    def _kill_worker(self, fault: plan.Fault) -> None:
        names = sorted(WORKERS)
        name = names[fault.target % len(names)]
        with self.lock:
            if name not in self.stack.processes:
                return  # already down: another kill of it is in effect
            self.stack.kill(name)
        time.sleep(fault.lasts)
        with self.lock:
            self.stack.start_worker(name, queues=WORKERS[name], **self.worker_env)

    def _restart_redis(self, fault: plan.Fault) -> None:
        with self.redis_lock:
            self.stack.redis.restart()

    def _stop_broker(self, fault: plan.Fault) -> None:
        """Redis as broker loses what it held; RabbitMQ keeps its durable queues' messages."""
        with self.redis_lock:
            self.stack.broker.kill()
            time.sleep(fault.lasts)
            self.stack.broker.start()

    def _restart_postgres(self, fault: plan.Fault) -> None:
        with self.lock:  # the workers' restarts wait for the database, and the other way round
            self.postgres.kill()
            time.sleep(fault.lasts)
            self.postgres.start()

    def _drop_connections(self, fault: plan.Fault) -> None:
        engine = create_engine(self.postgres.url.rsplit("/", 1)[0] + "/postgres")
        try:
            with engine.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": self.stack.database_url.rsplit("/", 1)[1]},
                )
        except SQLAlchemyError as error:  # the database restarting meanwhile: nothing to drop
            self.log.append(f"drop connections: {error.__class__.__name__}")
        finally:
            engine.dispose()

    def _provider_down(self, fault: plan.Fault, mode: str) -> None:
        with self.lock:
            self.outages += 1
            self.proxy.mode = mode
        time.sleep(fault.lasts)
        with self.lock:
            self.outages -= 1
            if self.outages == 0:
                self.proxy.mode = PASS
