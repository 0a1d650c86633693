"""What the engine sends and counts: each step's message goes to the outbox in the transaction
that decided it, and each outcome of a step is counted for /metrics."""

from __future__ import annotations

import time
from datetime import datetime

from app import metrics, outbox
from app.db import UnitOfWork
from sagas.definition import SagaDefinition, Step
from sagas.models import ACTION, Saga


def send(
    uow: UnitOfWork,
    definition: SagaDefinition,
    step: Step,
    kind: str,
    saga: Saga,
) -> None:
    """Queue the step's action or compensation for `saga`, at the saga's priority."""
    send_new(uow, definition, step, kind, (saga.id, saga.subject_id, saga.priority))


def send_new(
    uow: UnitOfWork,
    definition: SagaDefinition,
    step: Step,
    kind: str,
    saga: tuple[str, str, int | None],
    *,
    due: datetime | None = None,
) -> None:
    """`saga` is (id, subject id, priority). A message `due` later is held in the outbox until
    it is released (see tasks/relay.py), and then carries that time as its ETA."""
    saga_id, subject_id, priority = saga
    task = definition.action_task(step) if kind == ACTION else definition.compensation_task(step)
    queue = definition.queue_of(step, kind)
    # Both ids as keyword arguments: Flower's search finds a saga's tasks by either.
    kwargs = {"saga_id": saga_id, definition.subject_name: subject_id}
    if due is None:  # a lost one is re-sent by the sweep's re-drive of a saga that has not moved
        outbox.add_presumed_sent(uow, task, kwargs, queue, priority=priority)
    else:
        outbox.hold(uow, task, kwargs, queue, due=due, priority=priority)


def count(step: str, kind: str, outcome: str, started: float | None = None) -> None:
    metrics.SAGA_STEPS.labels(step=step, kind=kind, outcome=outcome).inc()
    if started is not None:
        metrics.SAGA_STEP_SECONDS.labels(step=step, kind=kind).observe(time.monotonic() - started)
