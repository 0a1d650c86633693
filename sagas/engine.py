"""The saga engine: runs steps forward, compensates in reverse, and recovers from the database.

Rules that make it safe under at-least-once delivery:
- Every transition holds the saga row's lock (`SELECT ... FOR UPDATE`), so a step, a
  compensation, a cancellation and a sweep never interleave on one saga.
- A message is acted on only if the saga is where the message says (status and position);
  a duplicate or stale message finds it has moved on and does nothing (`rows.row_at`).
- An action's effect and the row saying it SUCCEEDED commit together; a compensation undoes
  only an action that SUCCEEDED ("empty rollback" otherwise) and marks an action that never ran
  SKIPPED, so it can never apply afterwards ("hanging action").
- The next message goes to the outbox in the same transaction; a saga that has not moved for a
  while is re-driven from its persisted state by the sweep, so a lost message loses nothing.

The engine knows its definitions' steps, never what a saga is about (its subject), and nothing
of Flask or Celery: tasks call `run_action` / `run_compensation` and report what they raise.
"""

from __future__ import annotations

import time
from datetime import datetime

from app.db import UnitOfWork
from app.ids import new_id
from sagas import messages, rows
from sagas.definition import BusinessFailure, SagaContext, SagaDefinition, Step
from sagas.models import (
    ACTION,
    COMPENSATED,
    COMPENSATING,
    COMPLETED,
    FAILED,
    RUNNING,
    STEP_FAILED,
    STEP_RUNNING,
    STEP_SKIPPED,
    STEP_SUCCEEDED,
    Saga,
    SagaStep,
)
from sagas.recovery import Recovery


class SagaEngine(Recovery):
    """Forward steps, outside events and reads; compensation and recovery come from its bases."""

    # -- starting -----------------------------------------------------------------------------

    def start(
        self,
        uow: UnitOfWork,
        saga_type: str,
        subject_id: str,
        priority: int | None = None,
        not_before: datetime | None = None,
    ) -> Saga:
        """Create the saga in the caller's transaction and queue its first step; returns the saga
        as inserted (outside the session: its steps are not loaded).

        `priority` is the broker priority of all its messages. `not_before` delays the first
        step: its message is held in the outbox until it is released, and the sweep counts the
        saga stale only from then on.
        """
        definition = self.definitions[saga_type]
        saga_id = new_id("sga")
        ctx = SagaContext(saga_id, subject_id)
        skipped, first = self._plan(uow, definition, ctx, 0)
        new = rows.NewSaga(saga_id, saga_type, subject_id, first, skipped, self.clock(), priority, not_before)
        step, row = rows.insert_saga(uow, definition, new)
        if step is not None and step.is_wait:
            if step.on_wait is not None:
                step.on_wait(uow, ctx)
        elif step is not None:
            messages.send_new(uow, definition, step, ACTION, (saga_id, subject_id, priority), due=not_before)
        return Saga(**row)

    # -- forward ------------------------------------------------------------------------------

    def run_action(self, saga_id: str, step_name: str) -> None:
        """Run one action. Raises on a transient fault (the caller retries); handles the rest."""
        started = time.monotonic()
        with self.new_uow() as uow:
            saga, definition = self._lock(uow, saga_id)
            step, position = definition.step(step_name), definition.position(step_name)
            row = rows.row_at(saga, RUNNING, position, step.name, accepts=rows.LIVE)
            if row is None:
                messages.count(step.name, ACTION, "stale")
                return
            if saga.cancel_requested:
                self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
                uow.commit()
                return
            ctx = SagaContext(saga.id, saga.subject_id)
            if step.remote is None and step.prepare is None:
                self._run_local(uow, definition, saga, (step, row, position), started)
                return
            self._start(saga, row)
            prepared = step.prepare(uow, ctx) if step.prepare is not None else None
            uow.commit()
        self._run_remote(definition, step, SagaContext(saga_id, ctx.subject_id, prepared=prepared), started)

    def _run_remote(self, definition: SagaDefinition, step: Step, ctx: SagaContext, started: float) -> None:
        """The step's network call, outside any transaction; then its effect, in one."""
        position = definition.position(step.name)
        try:
            result = step.remote(ctx) if step.remote is not None else None
            done = SagaContext(ctx.saga_id, ctx.subject_id, result)
            orphaned = self._apply_action(definition, step, position, done)
        except BusinessFailure as failure:
            self._fail_forward(definition, step, position, ctx.saga_id, failure.reason)
            messages.count(step.name, ACTION, "business_failure", started)
            return
        if orphaned and step.remote_compensation is not None:
            # The saga was cancelled while the remote call ran: undo what it did at once.
            step.remote_compensation(done)
        messages.count(step.name, ACTION, "stale" if orphaned else "succeeded", started)

    def _start(self, saga: Saga, row: SagaStep, at: datetime | None = None) -> None:
        row.status = STEP_RUNNING
        row.attempts += 1
        row.started_at = row.started_at or at or self.clock()
        saga.moved(self.clock())

    def _run_local(
        self,
        uow: UnitOfWork,
        definition: SagaDefinition,
        saga: Saga,
        at: tuple[Step, SagaStep, int],
        started: float,
    ) -> None:
        """A step that calls nothing outside: its start, its effect and the next message commit
        in one transaction.

        The start is recorded after the effect, so that the saga's and the step's rows are
        written once, at commit. If the step fails, the transaction is rolled back and the start
        is recorded on its own; failures then go the usual way.
        """
        step, row, position = at
        saga_id = saga.id  # read now: the rollback expires the saga's attributes
        began = self.clock()
        try:
            if step.action is not None:
                step.action(uow, SagaContext(saga_id, saga.subject_id))
            self._start(saga, row, began)
            self._succeed(uow, definition, saga, row, position)
            uow.commit()
        except BusinessFailure as failure:
            uow.rollback()
            self._record_start(saga_id, step, position)
            self._fail_forward(definition, step, position, saga_id, failure.reason)
            messages.count(step.name, ACTION, "business_failure", started)
            return
        except Exception:  # not swallowed: recorded as started, then raised for the task to retry
            uow.rollback()
            self._record_start(saga_id, step, position)
            raise
        messages.count(step.name, ACTION, "succeeded", started)

    def _record_start(self, saga_id: str, step: Step, position: int) -> None:
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, saga_id)
            row = rows.row_at(saga, RUNNING, position, step.name, accepts=rows.LIVE)
            if row is not None:
                self._start(saga, row)
                uow.commit()

    def _succeed(
        self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, row: SagaStep, position: int
    ) -> None:
        """After the action's effect, in its transaction: the record that it SUCCEEDED, and the
        next message.

        Without autoflush: what comes next may read the subject (a step's condition, a wait
        step's hook), and each read would first write the saga's and the step's rows, which are
        written again at commit. The one path that reloads rows (compensation) flushes first.
        """
        with uow.session.no_autoflush:
            rows.finish(row, STEP_SUCCEEDED, self.clock())
            self._advance(uow, definition, saga, position + 1)

    def _apply_action(self, definition: SagaDefinition, step: Step, position: int, ctx: SagaContext) -> bool:
        """Apply the action and move on, in one transaction.

        Returns True when what `remote` did must be undone at once: the saga is being undone and
        no copy of this step recorded it. (A duplicate copy that finds the saga simply moved on
        must NOT undo it: the winning copy recorded that same remote result.)
        """
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, ctx.saga_id)
            row = rows.row_at(saga, RUNNING, position, step.name, accepts=rows.ONLY_RUNNING)
            if row is None:
                recorded = saga.step(step.name, ACTION)
                return saga.status in (COMPENSATING, COMPENSATED) and (
                    recorded is None or recorded.status != STEP_SUCCEEDED
                )
            if saga.cancel_requested:
                # Cancelled while this step ran: don't apply it; compensate (its own compensation
                # finds it not applied and does nothing), and undo the remote part now.
                self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
                uow.commit()
                return True
            if step.action is not None:
                step.action(uow, ctx)
            self._succeed(uow, definition, saga, row, position)
            uow.commit()
            return False

    def _fail_forward(
        self, definition: SagaDefinition, step: Step, position: int, saga_id: str, reason: str
    ) -> None:
        with self.new_uow() as uow:
            saga, _ = self._lock(uow, saga_id)
            row = rows.row_at(saga, RUNNING, position, step.name)
            if row is None:
                return
            rows.finish(row, STEP_FAILED, self.clock(), reason)
            self._begin_compensation(uow, definition, saga, reason)
            uow.commit()

    def _advance(self, uow: UnitOfWork, definition: SagaDefinition, saga: Saga, position: int) -> None:
        """Queue the next step that applies, pause at a wait step, or complete the saga."""
        saga.moved(self.clock())
        if saga.cancel_requested and position < len(definition.steps):
            saga.position = position
            uow.session.flush()  # compensation reloads the subject: nothing pending may be lost
            self._begin_compensation(uow, definition, saga, saga.abort_reason or "cancelled")
            return
        ctx = SagaContext(saga.id, saga.subject_id)
        skipped, index = self._plan(uow, definition, ctx, position)
        for each in skipped:
            row = saga.step(definition.steps[each].name, ACTION)
            assert row is not None
            rows.finish(row, STEP_SKIPPED, self.clock())
        if index is None:
            saga.status = COMPLETED
            return
        step = definition.steps[index]
        saga.position = index
        if not step.is_wait:
            messages.send(uow, definition, step, ACTION, saga)
            return
        assert step.wait_status is not None
        row = saga.step(step.name, ACTION)
        assert row is not None
        row.status = STEP_RUNNING
        row.started_at = self.clock()
        saga.status = step.wait_status
        if step.on_wait is not None:
            step.on_wait(uow, ctx)

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
        row = rows.row_at(saga, step.wait_status, position, step.name)
        if row is None:
            return False
        rows.finish(row, STEP_SUCCEEDED, self.clock())
        saga.status = RUNNING
        self._advance(uow, definition, saga, position + 1)
        return True

    def abort(self, uow: UnitOfWork, saga_id: str, reason: str) -> bool:
        """Cancel the saga: compensate now if it is waiting, not started yet or FAILED, else at
        its next step. False if it is already compensating or finished (nothing to do)."""
        saga, definition = self._lock(uow, saga_id)
        step = definition.steps[saga.position]
        row = saga.step(step.name, ACTION)
        before_its_turn = rows.not_started(saga, row)
        if saga.status == RUNNING and not before_its_turn:
            saga.cancel_requested = True
            saga.abort_reason = saga.abort_reason or reason
            return True
        waiting = step.is_wait and saga.status == step.wait_status
        if not (waiting or before_its_turn or (saga.status == FAILED and saga.failed_kind == ACTION)):
            return False
        if row is not None and waiting:
            rows.finish(row, STEP_FAILED, self.clock(), reason)
        saga.cancel_requested = True
        saga.failed_kind = None
        self._begin_compensation(uow, definition, saga, reason)
        return True

    # -- reading ------------------------------------------------------------------------------

    def lock(self, uow: UnitOfWork, saga_id: str) -> Saga:
        """Take the saga's lock in the caller's transaction: callers that also change the saga's
        subject lock the saga first, as the engine does, so they never deadlock with a step."""
        return self._lock(uow, saga_id)[0]

    def lock_subject(self, uow: UnitOfWork, subject_id: str) -> Saga:
        """`lock`, for the saga of `subject_id`."""
        return rows.lock_subject(uow, subject_id)

    def waiting_at(self, saga: Saga, step_name: str) -> bool:
        definition = self.definitions[saga.type]
        step = definition.step(step_name)
        return saga.status == step.wait_status and saga.position == definition.position(step_name)

    @staticmethod
    def get(uow: UnitOfWork, saga_id: str) -> Saga:
        return rows.get(uow, saga_id)
