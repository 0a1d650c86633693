"""What a saga is made of: an ordered list of steps, each an action with its compensation.

A step's functions are plain domain functions. `action` and `compensation` run inside the
engine's transaction, so their effect and the record that they ran commit together. A step
that must call another system over the network does it in `remote` (before `action`, outside
any transaction; idempotent) and undoes it in `remote_compensation`.
A "wait" step pauses the saga until an outside event (a payment webhook) resumes or aborts it.

A definition knows its steps and their queues; the engine knows nothing of what a saga is about
beyond its subject's id (the order saga's subject is an order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.db import UnitOfWork
from sagas.models import ACTION, ENGINE_STATUSES


class BusinessFailure(Exception):
    """A step's legitimate "no" (no stock, coupon taken): compensate at once, never retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SagaContext:
    saga_id: str
    subject_id: str
    # What `remote` returned, given to `action`; or, for a compensation, whether the action ran.
    remote_result: Any = None
    action_applied: bool = False
    # What `prepare` returned, given to `remote` (what to ask the other system for).
    prepared: Any = None


@dataclass(frozen=True)
class RetryPolicy:
    """Transient faults are retried with exponential backoff and full jitter, a bounded number of
    times; then the saga is FAILED and waits for an operator."""

    max_retries: int = 5
    backoff_seconds: int = 2
    backoff_max_seconds: int = 60


LocalFn = Callable[[UnitOfWork, SagaContext], None]
PrepareFn = Callable[[UnitOfWork, SagaContext], Any]
Predicate = Callable[[UnitOfWork, SagaContext], bool]
RemoteFn = Callable[[SagaContext], Any]


def _always(_uow: UnitOfWork, _ctx: SagaContext) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    name: str
    queue: str
    action: LocalFn | None = None
    compensation_name: str | None = None
    compensation: LocalFn | None = None
    compensation_queue: str | None = None
    # Runs in the transaction that marks the step RUNNING, before `remote` (e.g. a local record
    # of the payment about to be created, so a compensation can always find it); what it
    # returns is handed to `remote` as `ctx.prepared`.
    prepare: PrepareFn | None = None
    remote: RemoteFn | None = None
    remote_compensation: RemoteFn | None = None
    applies: Predicate = _always
    # A wait step: no task runs; the saga shows `wait_status` until resumed or aborted.
    wait_status: str | None = None
    on_wait: LocalFn | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def is_wait(self) -> bool:
        return self.wait_status is not None

    @property
    def has_compensation(self) -> bool:
        return self.compensation_name is not None


@dataclass(frozen=True)
class SagaDefinition:
    name: str
    task_prefix: str
    steps: tuple[Step, ...]
    # Called in the transaction that starts compensating (the order becomes CANCELLING) and in
    # the one that finishes it (the order becomes CANCELLED).
    on_compensating: Callable[[UnitOfWork, SagaContext, str], None] | None = None
    on_compensated: LocalFn | None = None
    # The keyword argument that carries the subject's id in every step's message, beside
    # `saga_id`: Flower's search then finds a saga's tasks by either id.
    subject_name: str = "subject_id"

    @property
    def statuses(self) -> tuple[str, ...]:
        """Every status a saga of this definition can show."""
        waits = tuple(step.wait_status for step in self.steps if step.wait_status is not None)
        return ENGINE_STATUSES[:1] + waits + ENGINE_STATUSES[1:]

    def position(self, step_name: str) -> int:
        for position, step in enumerate(self.steps):
            if step_name in (step.name, step.compensation_name):
                return position
        raise KeyError(step_name)

    def step(self, step_name: str) -> Step:
        return self.steps[self.position(step_name)]

    def action_task(self, step: Step) -> str:
        return f"{self.task_prefix}.{step.name}"

    def compensation_task(self, step: Step) -> str:
        assert step.compensation_name is not None
        return f"{self.task_prefix}.{step.compensation_name}"

    @staticmethod
    def queue_of(step: Step, kind: str) -> str:
        """The queue of the step's action (kind ACTION) or of its compensation."""
        return step.queue if kind == ACTION else step.compensation_queue or step.queue
