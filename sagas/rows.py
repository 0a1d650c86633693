"""The saga's persisted rows, as the engine reads and writes them.

Every transition starts the same way: lock the saga, and act only if the saga is where the
message says (status and position) and the step's row is in a status the transition accepts.
`row_at` is that guard; a duplicate or stale message finds the saga moved on and gets None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import joinedload

from app.db import UnitOfWork
from app.errors import NotFound
from app.ids import looks_like_id
from sagas.definition import SagaDefinition, Step
from sagas.models import (
    ACTION,
    COMPLETED,
    RUNNING,
    STEP_PENDING,
    STEP_RUNNING,
    STEP_SKIPPED,
    Saga,
    SagaStep,
)

SAGAS: Table = Saga.__table__  # type: ignore[assignment]
SAGA_STEPS: Table = SagaStep.__table__  # type: ignore[assignment]

LIVE = (STEP_PENDING, STEP_RUNNING)  # a step that has not finished, started or not
ONLY_RUNNING = (STEP_RUNNING,)


_LOCKED = "sagas.locked"  # in session.info: (the transaction, the sagas it has locked)


def lock(uow: UnitOfWork, saga_id: str) -> Saga:
    """The saga with its steps, in one query; only the saga's row is locked.

    Asked again in the same transaction (a webhook locks the saga, then resumes it), it answers
    from the session without a query: the row is still locked, and nothing changes a saga but
    through the session's own copy."""
    session = uow.session
    held: tuple[Any, dict[str, Saga]] | None = session.info.get(_LOCKED)
    if held is not None and held[0] is session.get_transaction() and saga_id in held[1]:
        return held[1][saga_id]
    saga = session.get(
        Saga,
        saga_id,
        options=[joinedload(Saga.steps)],
        with_for_update={"of": Saga},
        populate_existing=True,
    )
    if saga is None:
        raise NotFound(f"No saga {saga_id!r}.")
    return _held(uow, saga)


def lock_subject(uow: UnitOfWork, subject_id: str) -> Saga:
    """`lock`, for the saga of `subject_id` (an order's, for its payment's webhook)."""
    query = (
        select(Saga)
        .options(joinedload(Saga.steps))
        .where(Saga.subject_id == subject_id)
        .with_for_update(of=Saga)
        .execution_options(populate_existing=True)
    )
    saga = uow.session.scalars(query).unique().one_or_none()  # every row: the steps come one a row
    if saga is None:
        raise NotFound(f"No saga of {subject_id!r}.")
    return _held(uow, saga)


def _held(uow: UnitOfWork, saga: Saga) -> Saga:
    """Remember that this transaction holds the saga's lock (see `lock`)."""
    session = uow.session
    transaction = session.get_transaction()  # begun by the query, if it was not already
    held: tuple[Any, dict[str, Saga]] | None = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = session.info[_LOCKED] = (transaction, {})
    held[1][saga.id] = saga
    return saga


def get(uow: UnitOfWork, saga_id: str) -> Saga:
    """Read without a lock; anything that is not one of our ids is simply not found."""
    saga = uow.session.get(Saga, saga_id) if looks_like_id(saga_id) else None
    if saga is None:
        raise NotFound(f"No saga {saga_id!r}.")
    return saga


def row_at(
    saga: Saga,
    status: str | None,
    position: int,
    name: str,
    *,
    kind: str = ACTION,
    accepts: Iterable[str] | None = None,
) -> SagaStep | None:
    """The step's row if the saga is at `status` and `position` and the row's status is one
    that `accepts` (any, when None); else None: the message is stale."""
    if saga.status != status or saga.position != position:
        return None
    row = saga.step(name, kind)
    if row is None or (accepts is not None and row.status not in accepts):
        return None
    return row


def finish(row: SagaStep, status: str, at: datetime, error: str | None = None) -> None:
    row.status = status
    row.finished_at = at
    row.error = error


def not_started(saga: Saga, row: SagaStep | None) -> bool:
    """A delayed saga whose first step has not started: nothing of it has been applied, so a
    cancellation undoes it at once rather than when its message comes due. The first step runs
    under the saga's lock, which the caller holds."""
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


@dataclass(frozen=True)
class NewSaga:
    """A saga about to be inserted: where its plan starts, and when."""

    id: str
    type: str
    subject_id: str
    first: int | None  # the first step that applies; None: nothing to do, it is complete
    skipped: list[int]
    now: datetime
    priority: int | None = None
    not_before: datetime | None = None


def insert_saga(
    uow: UnitOfWork, definition: SagaDefinition, new: NewSaga
) -> tuple[Step | None, dict[str, Any]]:
    """Insert the saga and all its step rows as plain INSERTs, not through the ORM: every order
    starts one before its answer, and the ORM's flush of these rows costs more than the
    statements. Returns its first step (None if it is complete already) and the saga's row."""
    step = definition.steps[new.first] if new.first is not None else None
    status = COMPLETED if step is None else step.wait_status or RUNNING
    row = {
        "id": new.id,
        "type": new.type,
        "subject_id": new.subject_id,
        "status": status,
        "position": new.first if new.first is not None else 0,
        "cancel_requested": False,
        "created_at": new.now,
        "updated_at": new.now,
        "priority": new.priority,
        "not_before": new.not_before,
    }
    uow.connection.execute(insert(SAGAS), row)
    uow.connection.execute(insert(SAGA_STEPS), _step_rows(definition, new, step))
    return step, row


def _step_rows(definition: SagaDefinition, new: NewSaga, first: Step | None) -> list[dict[str, Any]]:
    waits_at = new.first if first is not None and first.is_wait else None  # that step shows RUNNING
    status_at = {index: STEP_SKIPPED for index in new.skipped}
    if waits_at is not None:
        status_at[waits_at] = STEP_RUNNING
    return [
        {
            "saga_id": new.id,
            "position": index,
            "name": each.name,
            "kind": ACTION,
            "status": status_at.get(index, STEP_PENDING),
            "attempts": 0,
            "started_at": new.now if index == waits_at else None,
            "finished_at": new.now if index in new.skipped else None,
        }
        for index, each in enumerate(definition.steps)
    ]
