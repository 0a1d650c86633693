"""When things go wrong: transient faults, exhausted retries, an operator's retry, and the sweep
that re-drives a saga whose message was lost."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, false, not_, or_, select

from app import metrics
from app.backoff import due_again, longest_wait
from app.db import UnitOfWork
from app.errors import Conflict
from sagas import messages, rows
from sagas.compensation import Compensation
from sagas.definition import SagaDefinition
from sagas.models import (
    ACTION,
    COMPENSATING,
    COMPENSATION,
    FAILED,
    RUNNING,
    STEP_FAILED,
    STEP_PENDING,
    Saga,
    SagaStep,
)

log = logging.getLogger(__name__)

ERROR_LIMIT = 2000


class Recovery(Compensation):
    def note_failed_attempt(self, saga_id: str, step_name: str, kind: str, error: str) -> None:
        """Record a transient fault on the step (it will be retried)."""
        with self.new_uow() as uow:
            saga, _definition, row = self._running_row(uow, saga_id, step_name, kind)
            if row is None:
                return
            row.error = error[:ERROR_LIMIT]
            saga.moved(self.clock())
            uow.commit()
        messages.count(row.name, kind, "transient_failure")

    def mark_failed(self, saga_id: str, step_name: str, kind: str, error: str) -> None:
        """Retries are exhausted: the saga is FAILED until an operator retries it."""
        with self.new_uow() as uow:
            saga, definition, row = self._running_row(uow, saga_id, step_name, kind)
            if row is None:
                return
            rows.finish(row, STEP_FAILED, self.clock(), error[:ERROR_LIMIT])
            if kind == ACTION and saga.cancel_requested:
                # Cancelled meanwhile: undo what was done rather than wait for an operator.
                self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
                uow.commit()
                return
            saga.status = FAILED
            saga.failed_kind = kind
            saga.moved(self.clock())
            uow.commit()
        metrics.SAGAS_FAILED.inc()
        messages.count(row.name, kind, "failed")
        log.error("saga %s FAILED at %s %s after its retries: %s", saga_id, kind, row.name, error[:200])

    def _running_row(
        self, uow: UnitOfWork, saga_id: str, step_name: str, kind: str
    ) -> tuple[Saga, SagaDefinition, SagaStep | None]:
        saga, definition = self._lock(uow, saga_id)
        expected = RUNNING if kind == ACTION else COMPENSATING
        position = definition.position(step_name)
        row = rows.row_at(saga, expected, position, step_name, kind=kind, accepts=rows.ONLY_RUNNING)
        return saga, definition, row

    def retry(self, saga_id: str) -> Saga:
        """Resume a FAILED saga from the step that failed; Conflict for any other status."""
        with self.new_uow() as uow:
            saga, definition = self._lock(uow, saga_id)
            if saga.status != FAILED:
                raise Conflict(f"Saga {saga_id} is {saga.status}; only a FAILED saga can be retried.")
            step = definition.steps[saga.position]
            kind = saga.failed_kind or ACTION
            name = step.name if kind == ACTION else str(step.compensation_name)
            row = saga.step(name, kind)
            assert row is not None
            saga.status = RUNNING if kind == ACTION else COMPENSATING
            row.status = STEP_PENDING
            row.finished_at = None
            saga.failed_kind = None
            saga.moved(self.clock())
            messages.send(uow, definition, step, kind, saga)
            uow.commit()
            return saga

    def redrive_stale(self, older_than: timedelta, limit: int = 200, behind: Collection[str] = ()) -> int:
        """Send again the message of every saga that has not moved for `older_than`, and again
        after twice as long if it still has not, and so on (app.backoff).

        If the message was only slow, the duplicate finds the saga moved on and does nothing.
        But a saga whose next message goes to a queue that is `behind` (a backlog waits in it)
        is left alone while that backlog lasts, up to the back-off's longest wait: its message
        may well be among those waiting, and a duplicate of every such saga would only make the
        queue longer still. A message the broker lost is so re-sent once its queue has drained,
        or after the longest wait under a load that never lets the queue drain.
        Rows locked by someone else are skipped, so two sweeps at once are harmless. A delayed
        saga counts from the time its first step was due, not from its start.
        """
        now = self.clock()
        cutoff = now - older_than
        waited_longest = Saga.updated_at <= now - longest_wait(older_than)
        with self.new_uow() as uow:
            sagas = uow.session.scalars(
                select(Saga)
                .where(
                    Saga.status.in_((RUNNING, COMPENSATING)),
                    Saga.updated_at < cutoff,  # implied by the next, and what the index serves
                    due_again(Saga.redrives, Saga.updated_at, now, older_than),
                    or_(Saga.not_before.is_(None), Saga.not_before < cutoff),
                    or_(waited_longest, not_(or_(false(), *self._sent_to(behind)))),
                )
                .order_by(Saga.updated_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for saga in sagas:
                definition = self.definitions[saga.type]
                kind = ACTION if saga.status == RUNNING else COMPENSATION
                saga.updated_at = now
                saga.redrives += 1
                messages.send(uow, definition, definition.steps[saga.position], kind, saga)
                step = definition.steps[saga.position].name
                log.warning(
                    "saga %s had not moved since %s: re-driving %s at %s (%d before)",
                    *(saga.id, cutoff, saga.status, step, saga.redrives - 1),
                )
            uow.commit()
            return len(sagas)

    def _sent_to(self, queues: Collection[str]) -> list[ColumnElement[bool]]:
        """Conditions that hold for a saga whose next message goes to one of `queues`."""
        conditions: list[ColumnElement[bool]] = []
        for saga_type, definition in self.definitions.items():
            for status, kind in ((RUNNING, ACTION), (COMPENSATING, COMPENSATION)):
                positions = [
                    position
                    for position, step in enumerate(definition.steps)
                    if not step.is_wait and definition.queue_of(step, kind) in queues
                ]
                if positions:
                    conditions.append(
                        and_(Saga.type == saga_type, Saga.status == status, Saga.position.in_(positions))
                    )
        return conditions
