"""What every part of the engine shares: its definitions, its unit of work and its clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from app.db import UnitOfWork
from app.timeutil import utcnow
from sagas import rows
from sagas.definition import SagaDefinition
from sagas.models import Saga


class EngineCore:
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        definitions: Mapping[str, SagaDefinition],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.new_uow = new_uow
        self.definitions = dict(definitions)
        self.clock = clock

    def _lock(self, uow: UnitOfWork, saga_id: str) -> tuple[Saga, SagaDefinition]:
        saga = rows.lock(uow, saga_id)
        return saga, self.definitions[saga.type]
