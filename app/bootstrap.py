"""The composition root: builds what a process needs once, and hands it to the entrypoints.

`bootstrap()` makes the settings, the database, the Redis client and the flash-sale gate, the
payment providers, the saga definitions and the engine. The Flask factory (`app.web`), the Celery
app (`tasks.celery_app`), the `saga` CLI and the scripts each take the `Runtime` it returns;
nothing below them reaches for it: services get what they need as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis

from app.broker import QueueProbe
from app.config import Settings, load_settings_or_exit
from app.db import Database
from app.flash_gate import FlashGate
from app.models import coupons, flash_sales, goods, orders, outbox, payments, users, webhooks
from app.payments import Providers, providers_for
from app.relay import OutboxRelay
from app.services import order_saga
from app.services.users import Authenticator
from sagas import models as saga_models
from sagas.engine import SagaEngine

# Every mapper of the shop and the engine, registered so that relationships between them resolve.
MODELS = (coupons, flash_sales, goods, orders, outbox, payments, users, webhooks, saga_models)


@dataclass
class Runtime:
    """What one process holds. The parts that keep connections are made on first use, and made
    anew in each forked process (`after_fork`)."""

    settings: Settings
    db: Database
    _redis: redis.Redis[str] | None = field(default=None, repr=False)
    relay: OutboxRelay | None = None  # set where a Celery app can send messages

    @property
    def redis(self) -> redis.Redis[str]:
        """Created on first use, so a process that never touches Redis never needs it."""
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.settings.redis_url,
                socket_timeout=2,
                socket_connect_timeout=2,
                health_check_interval=15,
                decode_responses=True,
            )
        return self._redis

    @cached_property
    def flash_gate(self) -> FlashGate:
        return FlashGate(
            self.redis,
            self.settings.flash_rate_per_second,
            sagas_per_second=self.settings.flash_sagas_per_second,
            max_waiting_sagas=self.settings.flash_max_queue_depth,
        )

    @cached_property
    def queue_probe(self) -> QueueProbe:
        return QueueProbe(self.settings.broker_url)

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.db.uow)

    @cached_property
    def providers(self) -> Providers:
        return providers_for(self.settings)

    @cached_property
    def engine(self) -> SagaEngine:
        definition = order_saga.build(self.db.uow, self.providers, self.settings)
        return SagaEngine(self.db.uow, {definition.name: definition})

    def after_fork(self) -> None:
        """No database or Redis connection, nor the provider's HTTP session, may be shared
        across a fork."""
        self.db.dispose_after_fork()
        self._redis = None
        for made_on_first_use in ("authenticator", "providers", "engine", "flash_gate", "queue_probe"):
            self.__dict__.pop(made_on_first_use, None)


def bootstrap(settings: Settings | None = None, database: Database | None = None) -> Runtime:
    """Bad settings stop the process with a one-line message (`load_settings_or_exit`)."""
    settings = settings or load_settings_or_exit()
    return Runtime(settings=settings, db=database or Database(settings.database_url))
