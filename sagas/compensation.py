"""Backward: undoing the steps a saga has done, last first."""

from __future__ import annotations

import time

from app.db import UnitOfWork
from sagas import messages, rows
from sagas.core import EngineCore
from sagas.definition import SagaContext, SagaDefinition, Step
from sagas.models import (
    ACTION,
    COMPENSATED,
    COMPENSATING,
    COMPENSATION,
    STEP_FAILED,
    STEP_PENDING,
    STEP_RUNNING,
    STEP_SKIPPED,
    STEP_SUCCEEDED,
    Saga,
    SagaStep,
)

STARTED = (STEP_SUCCEEDED, STEP_RUNNING, STEP_FAILED)  # an action that may have had an effect


class Compensation(EngineCore):
    def _begin_compensation(
        self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, reason: str
    ) -> None:
        """Turn the saga around: every step not reached is SKIPPED, every step that may have had
        an effect gets a compensation row, and the last of those is queued."""
        saga.status = COMPENSATING
        saga.abort_reason = saga.abort_reason or reason
        if definition.on_compensating is not None:
            definition.on_compensating(uow, SagaContext(saga.id, saga.subject_id), saga.abort_reason)
        now = self.clock()
        for index in range(len(definition.steps) - 1, -1, -1):
            step = definition.steps[index]
            row = saga.step(step.name, ACTION)
            assert row is not None
            if row.status == STEP_PENDING:
                rows.finish(row, STEP_SKIPPED, now)
                continue
            wanted = index <= saga.position and row.status in STARTED and step.has_compensation
            if wanted and saga.step(str(step.compensation_name), COMPENSATION) is None:
                saga.steps.append(
                    SagaStep(
                        position=index,
                        name=step.compensation_name,
                        kind=COMPENSATION,
                        status=STEP_PENDING,
                        attempts=0,
                    )
                )
        self._next_compensation(uow, definition, saga, saga.position)

    def run_compensation(self, saga_id: str, step_name: str) -> None:
        """Run one compensation. Raises on a transient fault (the caller retries)."""
        started = time.monotonic()
        with self.new_uow() as uow:
            saga, definition = self._lock(uow, saga_id)
            step, position = definition.step(step_name), definition.position(step_name)
            name = str(step.compensation_name)
            row = rows.row_at(saga, COMPENSATING, position, name, kind=COMPENSATION, accepts=rows.LIVE)
            if row is None:
                messages.count(name, COMPENSATION, "stale")
                return
            row.status = STEP_RUNNING
            row.attempts += 1
            row.started_at = row.started_at or self.clock()
            saga.moved(self.clock())
            applied = _applied(saga, step)
            uow.commit()
        ctx = SagaContext(saga_id, saga.subject_id, action_applied=applied)
        remote = step.remote_compensation(ctx) if step.remote_compensation is not None else None
        if self._apply_compensation(definition, step, SagaContext(saga_id, saga.subject_id, remote)):
            messages.count(name, COMPENSATION, "succeeded", started)

    def _apply_compensation(self, definition: SagaDefinition, step: Step, ctx: SagaContext) -> bool:
        """The compensation's local part and the record that it SUCCEEDED, in one transaction;
        then the next compensation. False if the saga moved on meanwhile."""
        position = definition.position(step.name)
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, ctx.saga_id)
            name = str(step.compensation_name)
            row = rows.row_at(
                saga, COMPENSATING, position, name, kind=COMPENSATION, accepts=rows.ONLY_RUNNING
            )
            if row is None:
                return False
            applied = _applied(saga, step)
            if step.compensation is not None:
                step.compensation(uow, SagaContext(ctx.saga_id, ctx.subject_id, ctx.remote_result, applied))
            now = self.clock()
            action = saga.step(step.name, ACTION)
            if action is not None and action.status in rows.LIVE:
                rows.finish(action, STEP_SKIPPED, now, action.error)  # it can never apply now
            rows.finish(row, STEP_SUCCEEDED, now)
            self._next_compensation(uow, definition, saga, position - 1)
            uow.commit()
        return True

    def _next_compensation(
        self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, position: int
    ) -> None:
        saga.moved(self.clock())
        for index in range(position, -1, -1):
            step = definition.steps[index]
            if not step.has_compensation:
                continue
            row = saga.step(str(step.compensation_name), COMPENSATION)
            if row is not None and row.status in rows.LIVE:
                saga.position = index
                messages.send(uow, definition, step, COMPENSATION, saga)
                return
        saga.status = COMPENSATED
        if definition.on_compensated is not None:
            definition.on_compensated(uow, SagaContext(saga.id, saga.subject_id))


def _applied(saga: Saga, step: Step) -> bool:
    """Did the step's action take effect? Only then is there anything local to undo."""
    action = saga.step(step.name, ACTION)
    return action is not None and action.status == STEP_SUCCEEDED
