"""What one process holds: its settings, its database and its Redis client.

Views reach it through `current_app`; tasks through the same Flask app (the Celery recipe runs
every task inside the app context).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis
from flask import Flask, current_app

from app.broker import QueueProbe
from app.config import Settings
from app.db import Database
from app.flash_gate import FlashGate
from app.payments import provider_for
from app.payments.port import PaymentProvider
from sagas.engine import SagaEngine


@dataclass
class AppState:
    settings: Settings
    db: Database
    _redis: redis.Redis[str] | None = field(default=None, repr=False)
    relay: Any = None  # tasks.relay.OutboxRelay, set where a Celery app exists

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
            rush_attempts_per_second=self.settings.flash_rush_attempts_per_second,
        )

    @cached_property
    def queue_probe(self) -> QueueProbe:
        return QueueProbe(self.settings.broker_url)

    @cached_property
    def provider(self) -> PaymentProvider:
        return provider_for(self.settings)

    @cached_property
    def engine(self) -> SagaEngine:
        from sagas import order_saga

        definition = order_saga.build(self.db.uow, self.provider, self.settings)
        return SagaEngine(self.db.uow, {definition.name: definition})

    def after_fork(self) -> None:
        self.db.dispose_after_fork()
        self._redis = None
        # The provider's HTTP session (and the engine bound to it) are made anew in each process.
        self.__dict__.pop("provider", None)
        self.__dict__.pop("engine", None)
        self.__dict__.pop("flash_gate", None)
        self.__dict__.pop("queue_probe", None)


def state(app: Flask | Any = None) -> AppState:
    flask_app = app or current_app
    result: AppState = flask_app.extensions["ordersaga"]
    return result
