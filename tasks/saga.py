"""Celery tasks for saga steps: one task per action and per compensation, named after it
(`orders.saga.reserve_stock`) and routed to the step's queue.

Failure classes: business outcomes are handled inside the engine (compensation starts at once).
Anything a step raises is a transient fault: retried with exponential backoff and full jitter
(Celery's own backoff function), a bounded number of times; then the saga is FAILED.
"""

from __future__ import annotations

import logging

from celery import Celery, Task
from celery.utils.time import get_exponential_backoff_interval

from app.bootstrap import Runtime
from sagas.definition import Step
from sagas.models import ACTION, COMPENSATION

log = logging.getLogger(__name__)


def register(celery_app: Celery, runtime: Runtime) -> dict[str, dict[str, str]]:
    """Register every step's tasks; returns their routes (task name → queue)."""
    routes: dict[str, dict[str, str]] = {}
    for definition in runtime.engine.definitions.values():
        for step in definition.steps:
            if step.is_wait:
                continue
            name = definition.action_task(step)
            _register_step(celery_app, runtime, name, step, ACTION)
            routes[name] = {"queue": definition.queue_of(step, ACTION)}
            if step.has_compensation:
                name = definition.compensation_task(step)
                _register_step(celery_app, runtime, name, step, COMPENSATION)
                routes[name] = {"queue": definition.queue_of(step, COMPENSATION)}
    return routes


def _register_step(celery_app: Celery, runtime: Runtime, task_name: str, step: Step, kind: str) -> None:
    policy = step.retry
    step_name = step.name if kind == ACTION else str(step.compensation_name)

    def run(self: Task, saga_id: str, **_subject: str) -> None:
        """The subject's id rides along for Flower's search; the engine reads the saga. The
        engine is looked up per call: each forked process makes its own."""
        engine = runtime.engine
        try:
            if kind == ACTION:
                engine.run_action(saga_id, step_name)
            else:
                engine.run_compensation(saga_id, step_name)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            if self.request.retries >= policy.max_retries:
                engine.mark_failed(saga_id, step_name, kind, message)
                raise
            engine.note_failed_attempt(saga_id, step_name, kind, message)
            countdown = get_exponential_backoff_interval(
                policy.backoff_seconds, self.request.retries, policy.backoff_max_seconds, full_jitter=True
            )
            log.warning(
                "saga %s %s %s failed (%s); retry in %ss", saga_id, kind, step_name, message, countdown
            )
            raise self.retry(exc=error, countdown=countdown) from error

    run.__name__ = run.__qualname__ = task_name.replace(".", "_")
    run.__doc__ = f"Saga {kind} {step_name} (queue {step.queue})."
    celery_app.task(name=task_name, bind=True, max_retries=policy.max_retries)(run)
