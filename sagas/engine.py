"""The saga engine: runs steps forward, compensates in reverse, and recovers from the database.

Rules that make it safe under at-least-once delivery:
- Every transition holds the saga row's lock (`SELECT ... FOR UPDATE`), so a step, a
  compensation, a cancellation and a sweep never interleave on one saga.
- A message is acted on only if the saga is where the message says (status and position);
  a duplicate or stale message finds it has moved on and does nothing.
- An action's effect and the row saying it SUCCEEDED commit together; a compensation undoes
  only an action that SUCCEEDED ("empty rollback" otherwise) and marks an action that never ran
  SKIPPED, so it can never apply afterwards ("hanging action").
- The next message goes to the outbox in the same transaction; a saga that has not moved for a
  while is re-driven from its persisted state by the sweep, so a lost message loses nothing.

The engine knows nothing of Flask or Celery: tasks call `run_action` / `run_compensation`, and
classify what they raise (see tasks/saga.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Table, insert, or_, select
from sqlalchemy.orm import joinedload

from app import metrics, outbox
from app.db import UnitOfWork
from app.ids import new_id
from app.services.errors import Conflict, NotFound
from app.services.lookup import find
from app.timeutil import utcnow
from sagas.definition import BusinessFailure, SagaContext, SagaDefinition, Step
from sagas.models import (
    ACTION,
    COMPENSATED,
    COMPENSATING,
    COMPENSATION,
    COMPLETED,
    FAILED,
    RUNNING,
    STEP_FAILED,
    STEP_PENDING,
    STEP_RUNNING,
    STEP_SKIPPED,
    STEP_SUCCEEDED,
    Saga,
    SagaStep,
)

log = logging.getLogger(__name__)

SAGAS: Table = Saga.__table__  # type: ignore[assignment]
SAGA_STEPS: Table = SagaStep.__table__  # type: ignore[assignment]

ERROR_LIMIT = 2000


class SagaEngine:
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        definitions: Mapping[str, SagaDefinition],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.new_uow = new_uow
        self.definitions = dict(definitions)
        self.clock = clock

    # -- starting -----------------------------------------------------------------------------

    def start(
        self,
        uow: UnitOfWork,
        saga_type: str,
        order_id: str,
        priority: int | None = None,
        not_before: datetime | None = None,
    ) -> str:
        """Create the saga in the caller's transaction and queue its first step; returns its id.

        `priority` is the broker priority of all its messages (flash-sale orders queue behind
        ordinary ones, so that a sale cannot starve the shop). `not_before` makes the first
        step's message a held one, due then: the flash-sale releaser sends it when it is due and
        buyers are not rushing the gate, so that a burst of winners reaches the workers and the
        database at a steady rate, and after the rush rather than during it.

        The saga and its step rows go in as plain INSERTs, not through the ORM: every order and
        every flash-sale winner starts a saga before its answer, and the ORM's flush of these
        rows (with the order's and the outbox's) costs more than the statements (docs/benchmarks.md).
        """
        definition = self.definitions[saga_type]
        now = self.clock()
        saga_id = new_id("sga")
        ctx = SagaContext(saga_id, order_id)
        skipped, first = self._plan(uow, definition, ctx, 0)
        step = definition.steps[first] if first is not None else None
        status = COMPLETED if step is None else step.wait_status or RUNNING
        uow.connection.execute(
            insert(SAGAS),
            {
                "id": saga_id,
                "type": saga_type,
                "order_id": order_id,
                "status": status,
                "position": first if first is not None else 0,
                "cancel_requested": False,
                "created_at": now,
                "updated_at": now,
                "priority": priority,
                "not_before": not_before,
            },
        )
        waits_at = first if step is not None and step.is_wait else None  # that step shows RUNNING
        status_at = {index: STEP_SKIPPED for index in skipped}
        if waits_at is not None:
            status_at[waits_at] = STEP_RUNNING
        uow.connection.execute(
            insert(SAGA_STEPS),
            [
                {
                    "saga_id": saga_id,
                    "position": index,
                    "name": each.name,
                    "kind": ACTION,
                    "status": status_at.get(index, STEP_PENDING),
                    "attempts": 0,
                    "started_at": now if index == waits_at else None,
                    "finished_at": now if index in skipped else None,
                }
                for index, each in enumerate(definition.steps)
            ],
        )
        if step is None:
            return saga_id
        if step.is_wait:
            if step.on_wait is not None:
                step.on_wait(uow, ctx)
            return saga_id
        self._send_message(
            uow,
            definition.action_task(step),
            saga_id,
            order_id,
            step.queue,
            priority,
            eta=not_before,
            held=not_before is not None,
        )
        return saga_id

    # -- forward ------------------------------------------------------------------------------

    def run_action(self, saga_id: str, step_name: str) -> None:
        """Run one action. Raises on a transient fault (the caller retries); handles the rest."""
        started = time.monotonic()
        with self.new_uow() as uow:
            saga, definition = self._lock(uow, saga_id)
            step, position = definition.step(step_name), definition.position(step_name)
            row = saga.step(step.name, ACTION)
            if (
                not self._at(saga, RUNNING, position)
                or row is None
                or row.status not in (STEP_PENDING, STEP_RUNNING)
            ):
                self._count(step.name, ACTION, "stale")
                return
            if saga.cancel_requested:
                self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
                uow.commit()
                return
            ctx = SagaContext(saga.id, saga.order_id)
            if step.remote is None and step.prepare is None:
                self._run_local(uow, definition, saga, step, row, position, started)
                return
            self._start(saga, row)
            prepared = step.prepare(uow, ctx) if step.prepare is not None else None
            uow.commit()

        try:
            remote_ctx = SagaContext(saga_id, ctx.order_id, prepared=prepared)
            remote_result = step.remote(remote_ctx) if step.remote is not None else None
            orphaned = self._apply_action(
                definition, step, position, SagaContext(saga_id, ctx.order_id, remote_result)
            )
        except BusinessFailure as failure:
            self._fail_forward(definition, step, position, saga_id, failure.reason)
            self._count(step.name, ACTION, "business_failure", started)
            return
        if orphaned and step.remote_compensation is not None:
            # The saga was cancelled while the remote call ran: undo what it did at once.
            step.remote_compensation(SagaContext(saga_id, ctx.order_id, remote_result))
        self._count(step.name, ACTION, "stale" if orphaned else "succeeded", started)

    def _start(self, saga: Saga, row: SagaStep, at: datetime | None = None) -> None:
        row.status = STEP_RUNNING
        row.attempts += 1
        row.started_at = row.started_at or at or self.clock()
        self._touch(saga)

    @staticmethod
    def _act(step: Step, uow: UnitOfWork, ctx: SagaContext) -> None:
        if step.action is not None:
            step.action(uow, ctx)

    def _run_local(
        self,
        uow: UnitOfWork,
        definition: SagaDefinition,
        saga: Saga,
        step: Step,
        row: SagaStep,
        position: int,
        started: float,
    ) -> None:
        """A step that calls nothing outside: its start, its effect and the next message commit
        in the one transaction, with no separate transaction that marks it RUNNING first.

        The start is recorded after the effect, so that the saga's and the step's rows are
        written once, at commit, not once when the effect's first query flushes the start and
        again at commit. If the step fails, the transaction is rolled back, and the start is
        recorded on its own, as the two-transaction path would have left it; failures then go
        the usual way.
        """
        saga_id = saga.id  # read now: the rollback expires the saga's attributes
        began = self.clock()
        try:
            self._act(step, uow, SagaContext(saga_id, saga.order_id))
            self._start(saga, row, began)
            self._succeed(uow, definition, saga, row, position)
            uow.commit()
        except BusinessFailure as failure:
            uow.rollback()
            self._record_start(saga_id, step, position)
            self._fail_forward(definition, step, position, saga_id, failure.reason)
            self._count(step.name, ACTION, "business_failure", started)
            return
        except Exception:  # not swallowed: recorded as started, then raised for the task to retry
            uow.rollback()
            self._record_start(saga_id, step, position)
            raise
        self._count(step.name, ACTION, "succeeded", started)

    def _record_start(self, saga_id: str, step: Step, position: int) -> None:
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, saga_id)
            row = saga.step(step.name, ACTION)
            if (
                self._at(saga, RUNNING, position)
                and row is not None
                and row.status in (STEP_PENDING, STEP_RUNNING)
            ):
                self._start(saga, row)
                uow.commit()

    def _succeed(
        self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, row: SagaStep, position: int
    ) -> None:
        """After the action's effect, in its transaction: the record that it SUCCEEDED, and the
        next message.

        Without autoflush: what comes next reads the order (a step's condition, a wait step's
        hook), and each read would first write the saga's and the step's rows, which are written
        again at commit. Conditions and hooks read the order, never the saga's rows; the one path
        that reloads rows (compensation) flushes first.
        """
        with uow.session.no_autoflush:
            row.status = STEP_SUCCEEDED
            row.finished_at = self.clock()
            row.error = None
            self._advance(uow, definition, saga, position + 1)

    def _apply_action(self, definition: SagaDefinition, step: Step, position: int, ctx: SagaContext) -> bool:
        """Apply the action and move on, in one transaction.

        Returns True when what `remote` did must be undone at once: the saga is being undone and
        no copy of this step recorded it. (A duplicate copy that finds the saga simply moved on
        must NOT undo it: the winning copy recorded that same remote result.)
        """
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, ctx.saga_id)
            row = saga.step(step.name, ACTION)
            if not self._at(saga, RUNNING, position) or row is None or row.status != STEP_RUNNING:
                return saga.status in (COMPENSATING, COMPENSATED) and (
                    row is None or row.status != STEP_SUCCEEDED
                )
            if saga.cancel_requested:
                # Cancelled while this step ran: don't apply it; compensate (its own compensation
                # finds it not applied and does nothing), and undo the remote part now.
                self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
                uow.commit()
                return True
            self._act(step, uow, ctx)
            self._succeed(uow, definition, saga, row, position)
            uow.commit()
            return False

    def _fail_forward(
        self, definition: SagaDefinition, step: Step, position: int, saga_id: str, reason: str
    ) -> None:
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, saga_id)
            row = saga.step(step.name, ACTION)
            if not self._at(saga, RUNNING, position) or row is None:
                return
            row.status = STEP_FAILED
            row.error = reason
            row.finished_at = self.clock()
            self._begin_compensation(uow, definition, saga, reason)
            uow.commit()

    def _advance(self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, position: int) -> None:
        """Queue the next step that applies, pause at a wait step, or complete the saga."""
        self._touch(saga)
        if saga.cancel_requested and position < len(definition.steps):
            saga.position = position
            uow.session.flush()  # compensation reloads the order: nothing pending may be lost
            self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
            return
        ctx = SagaContext(saga.id, saga.order_id)
        skipped, index = self._plan(uow, definition, ctx, position)
        for each in skipped:
            row = saga.step(definition.steps[each].name, ACTION)
            assert row is not None
            row.status = STEP_SKIPPED
            row.finished_at = self.clock()
        if index is None:
            saga.status = COMPLETED
            return
        step = definition.steps[index]
        saga.position = index
        if step.is_wait:
            assert step.wait_status is not None
            row = saga.step(step.name, ACTION)
            assert row is not None
            row.status = STEP_RUNNING
            row.started_at = self.clock()
            saga.status = step.wait_status
            if step.on_wait is not None:
                step.on_wait(uow, ctx)
            return
        self._send(uow, definition.action_task(step), saga, step.queue)

    @staticmethod
    def _plan(
        uow: UnitOfWork, definition: SagaDefinition, ctx: SagaContext, position: int
    ) -> tuple[list[int], int | None]:
        """From `position` on: the steps that do not apply (to be SKIPPED), and the first that
        does (None: nothing is left, the saga is complete)."""
        skipped: list[int] = []
        for index in range(position, len(definition.steps)):
            if definition.steps[index].applies(uow, ctx):
                return skipped, index
            skipped.append(index)
        return skipped, None

    # -- outside events -----------------------------------------------------------------------

    def resume(self, uow: UnitOfWork, saga_id: str, step_name: str) -> bool:
        """The event a wait step waited for has happened: carry on. False if it was not waiting."""
        saga, definition = self._lock(uow, saga_id)
        step, position = definition.step(step_name), definition.position(step_name)
        row = saga.step(step.name, ACTION)
        if not self._at(saga, step.wait_status, position) or row is None:
            return False
        row.status = STEP_SUCCEEDED
        row.finished_at = self.clock()
        saga.status = RUNNING
        self._advance(uow, definition, saga, position + 1)
        return True

    def abort(self, uow: UnitOfWork, saga_id: str, reason: str) -> bool:
        """Cancel the saga: compensate now if it is waiting or FAILED, else at its next step.

        False if it is already compensating or finished (nothing to do).
        """
        saga, definition = self._lock(uow, saga_id)
        step = definition.steps[saga.position]
        row = saga.step(step.name, ACTION)
        before_its_turn = self._not_started(saga, row)
        if saga.status == RUNNING and not before_its_turn:
            saga.cancel_requested = True
            saga.abort_reason = saga.abort_reason or reason
            return True
        waiting = step.is_wait and saga.status == step.wait_status
        if waiting or before_its_turn or (saga.status == FAILED and saga.failed_kind == ACTION):
            if row is not None and waiting:
                row.status = STEP_FAILED
                row.error = reason
                row.finished_at = self.clock()
            saga.cancel_requested = True
            saga.failed_kind = None
            self._begin_compensation(uow, definition, saga, reason)
            return True
        return False

    @staticmethod
    def _not_started(saga: Saga, row: SagaStep | None) -> bool:
        """A paced saga whose first step has not started: its message may wait minutes for its
        turn, or for a rush of buyers to pass, and nothing of it has been applied, so a
        cancellation undoes it at once rather than when it runs (its units go back to the sale
        now). The first step runs under the saga's lock, which the caller holds."""
        return (
            saga.status == RUNNING
            and saga.not_before is not None
            and row is not None
            and row.status == STEP_PENDING
            and row.attempts == 0  # an operator's retry resets a failed step to PENDING
            and row.started_at is None
            and all(
                step.status == STEP_SKIPPED
                for step in saga.steps
                if step.kind == ACTION and step.position < saga.position
            )
        )

    # -- backward -----------------------------------------------------------------------------

    def _begin_compensation(
        self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, reason: str
    ) -> None:
        saga.status = COMPENSATING
        saga.abort_reason = saga.abort_reason or reason
        ctx = SagaContext(saga.id, saga.order_id)
        if definition.on_compensating is not None:
            definition.on_compensating(uow, ctx, saga.abort_reason)
        now = self.clock()
        for index in range(len(definition.steps) - 1, -1, -1):
            step = definition.steps[index]
            row = saga.step(step.name, ACTION)
            assert row is not None
            if row.status == STEP_PENDING:
                row.status = STEP_SKIPPED
                row.finished_at = now
                continue
            started = row.status in (STEP_SUCCEEDED, STEP_RUNNING, STEP_FAILED)
            if index <= saga.position and started and step.has_compensation:
                assert step.compensation_name is not None
                if saga.step(step.compensation_name, COMPENSATION) is None:
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
            assert step.compensation_name is not None
            row = saga.step(step.compensation_name, COMPENSATION)
            if (
                not self._at(saga, COMPENSATING, position)
                or row is None
                or row.status
                not in (
                    STEP_PENDING,
                    STEP_RUNNING,
                )
            ):
                self._count(step.compensation_name, COMPENSATION, "stale")
                return
            row.status = STEP_RUNNING
            row.attempts += 1
            row.started_at = row.started_at or self.clock()
            self._touch(saga)
            action = saga.step(step.name, ACTION)
            applied = action is not None and action.status == STEP_SUCCEEDED
            uow.commit()
        ctx = SagaContext(saga_id, saga.order_id, action_applied=applied)
        remote = step.remote_compensation(ctx) if step.remote_compensation is not None else None
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, saga_id)
            row = saga.step(step.compensation_name, COMPENSATION)
            if not self._at(saga, COMPENSATING, position) or row is None or row.status != STEP_RUNNING:
                return
            action = saga.step(step.name, ACTION)
            applied = action is not None and action.status == STEP_SUCCEEDED
            if step.compensation is not None:
                step.compensation(uow, SagaContext(saga_id, saga.order_id, remote, applied))
            now = self.clock()
            if action is not None and action.status in (STEP_PENDING, STEP_RUNNING):
                action.status = STEP_SKIPPED  # it can never apply now
                action.finished_at = now
            row.status = STEP_SUCCEEDED
            row.finished_at = now
            row.error = None
            self._next_compensation(uow, definition, saga, position - 1)
            uow.commit()
        self._count(step.compensation_name, COMPENSATION, "succeeded", started)

    def _next_compensation(
        self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, position: int
    ) -> None:
        self._touch(saga)
        for index in range(position, -1, -1):
            step = definition.steps[index]
            if not step.has_compensation:
                continue
            assert step.compensation_name is not None
            row = saga.step(step.compensation_name, COMPENSATION)
            if row is not None and row.status in (STEP_PENDING, STEP_RUNNING):
                saga.position = index
                self._send(
                    uow, definition.compensation_task(step), saga, step.compensation_queue or step.queue
                )
                return
        saga.status = COMPENSATED
        if definition.on_compensated is not None:
            definition.on_compensated(uow, SagaContext(saga.id, saga.order_id))

    # -- failures -----------------------------------------------------------------------------

    def note_failed_attempt(self, saga_id: str, step_name: str, kind: str, error: str) -> None:
        """Record a transient fault on the step (it will be retried)."""
        with self.new_uow() as uow:
            saga, _definition, row = self._current_row(uow, saga_id, step_name, kind)
            if row is None:
                return
            row.error = error[:ERROR_LIMIT]
            self._touch(saga)
            uow.commit()
        self._count(row.name, kind, "transient_failure")

    def mark_failed(self, saga_id: str, step_name: str, kind: str, error: str) -> None:
        """Retries are exhausted: the saga is FAILED until an operator retries it."""
        with self.new_uow() as uow:
            saga, definition, row = self._current_row(uow, saga_id, step_name, kind)
            if row is None:
                return
            row.status = STEP_FAILED
            row.error = error[:ERROR_LIMIT]
            row.finished_at = self.clock()
            if kind == ACTION and saga.cancel_requested:
                # The buyer cancelled meanwhile: undo what was done rather than wait for an operator.
                self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
                uow.commit()
                return
            saga.status = FAILED
            saga.failed_kind = kind
            self._touch(saga)
            uow.commit()
        metrics.SAGAS_FAILED.inc()
        self._count(row.name, kind, "failed")
        log.error("saga %s FAILED at %s %s after its retries: %s", saga_id, kind, row.name, error[:200])

    def _current_row(
        self, uow: UnitOfWork, saga_id: str, step_name: str, kind: str
    ) -> tuple[Saga, SagaDefinition, SagaStep | None]:
        saga, definition = self._lock(uow, saga_id)
        position = definition.position(step_name)
        expected = RUNNING if kind == ACTION else COMPENSATING
        row = saga.step(step_name, kind)
        if not self._at(saga, expected, position) or row is None or row.status != STEP_RUNNING:
            return saga, definition, None
        return saga, definition, row

    # -- operators and the sweep --------------------------------------------------------------

    def retry(self, saga_id: str) -> Saga:
        """Resume a FAILED saga from the step that failed; Conflict for any other status."""
        with self.new_uow() as uow:
            saga, definition = self._lock(uow, saga_id)
            if saga.status != FAILED:
                raise Conflict(f"Saga {saga_id} is {saga.status}; only a FAILED saga can be retried.")
            step = definition.steps[saga.position]
            if saga.failed_kind == COMPENSATION:
                assert step.compensation_name is not None
                row, saga.status = saga.step(step.compensation_name, COMPENSATION), COMPENSATING
                task, queue = definition.compensation_task(step), step.compensation_queue or step.queue
            else:
                row, saga.status = saga.step(step.name, ACTION), RUNNING
                task, queue = definition.action_task(step), step.queue
            assert row is not None
            row.status = STEP_PENDING
            row.finished_at = None
            saga.failed_kind = None
            self._touch(saga)
            self._send(uow, task, saga, queue)
            uow.commit()
            return saga

    def redrive_stale(self, older_than: timedelta, limit: int = 200) -> int:
        """Send again the message of every saga that has not moved for `older_than`.

        If the message was only slow, the duplicate finds the saga moved on and does nothing.
        Rows locked by someone else are skipped, so two sweeps at once are harmless. A paced saga
        counts from the time its first step was due, not from its start.
        """
        cutoff = self.clock() - older_than
        with self.new_uow() as uow:
            sagas = uow.session.scalars(
                select(Saga)
                .where(
                    Saga.status.in_((RUNNING, COMPENSATING)),
                    Saga.updated_at < cutoff,
                    or_(Saga.not_before.is_(None), Saga.not_before < cutoff),
                )
                .order_by(Saga.updated_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for saga in sagas:
                definition = self.definitions[saga.type]
                step = definition.steps[saga.position]
                self._touch(saga)
                if saga.status == RUNNING:
                    self._send(uow, definition.action_task(step), saga, step.queue)
                else:
                    self._send(
                        uow, definition.compensation_task(step), saga, step.compensation_queue or step.queue
                    )
                log.warning("saga %s had not moved since %s: re-driving %s", saga.id, cutoff, saga.status)
            uow.commit()
            return len(sagas)

    def lock(self, uow: UnitOfWork, saga_id: str) -> Saga:
        """Take the saga's lock in the caller's transaction: callers that also change the saga's
        order lock the saga first, as the engine does, so they never deadlock with a step."""
        return self._lock(uow, saga_id)[0]

    def waiting_at(self, saga: Saga, step_name: str) -> bool:
        definition = self.definitions[saga.type]
        step = definition.step(step_name)
        return saga.status == step.wait_status and saga.position == definition.position(step_name)

    def get(self, uow: UnitOfWork, saga_id: str) -> Saga:
        saga = find(uow.session, Saga, saga_id)
        if saga is None:
            raise NotFound(f"No saga {saga_id!r}.")
        return saga

    # -- helpers ------------------------------------------------------------------------------

    def _lock(self, uow: UnitOfWork, saga_id: str) -> tuple[Saga, SagaDefinition]:
        # The steps come in the same query (every transition reads them); only the saga's row
        # is locked.
        saga = uow.session.get(
            Saga,
            saga_id,
            options=[joinedload(Saga.steps)],
            with_for_update={"of": Saga},
            populate_existing=True,
        )
        if saga is None:
            raise NotFound(f"No saga {saga_id!r}.")
        return saga, self.definitions[saga.type]

    @staticmethod
    def _at(saga: Saga, status: str | None, position: int) -> bool:
        return saga.status == status and saga.position == position

    def _touch(self, saga: Saga) -> None:
        saga.updated_at = self.clock()

    def _send(self, uow: UnitOfWork, task: str, saga: Saga, queue: str) -> None:
        self._send_message(uow, task, saga.id, saga.order_id, queue, saga.priority)

    @staticmethod
    def _send_message(
        uow: UnitOfWork,
        task: str,
        saga_id: str,
        order_id: str,
        queue: str,
        priority: int | None,
        eta: datetime | None = None,
        held: bool = False,
    ) -> None:
        # saga_id and order_id as keyword arguments: Flower's search finds a saga's tasks by id.
        kwargs = {"saga_id": saga_id, "order_id": order_id}
        outbox.add(uow, task, kwargs, queue, eta=eta, priority=priority, held=held)

    @staticmethod
    def _count(step: str, kind: str, outcome: str, started: float | None = None) -> None:
        metrics.SAGA_STEPS.labels(step=step, kind=kind, outcome=outcome).inc()
        if started is not None:
            metrics.SAGA_STEP_SECONDS.labels(step=step, kind=kind).observe(time.monotonic() - started)
