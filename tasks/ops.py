"""Operational tasks."""

from __future__ import annotations

import json
import os

from celery import Celery, Task
from flask import current_app, has_app_context

from app.bootstrap import Runtime

HOP_TASK = "ops.hop"


def register(celery_app: Celery, runtime: Runtime) -> None:
    @celery_app.task(name="ops.ping", bind=True, acks_late=False)
    def ping(self: Task, token: str) -> None:
        """Prove that a worker consumes a queue and runs tasks inside the Flask app context.

        The answer goes to Redis, where the caller (a readiness probe or a test) waits for it.
        """
        answer = {
            "queue": (self.request.delivery_info or {}).get("routing_key"),
            "app_context": has_app_context(),
            "app_name": current_app.name if has_app_context() else None,
            "pid": os.getpid(),
        }
        runtime.redis.set(f"ordersaga:ping:{token}", json.dumps(answer), ex=300)

    @celery_app.task(name=HOP_TASK, bind=True, acks_late=False, ignore_result=True)
    def hop(self: Task, token: str, hops_left: int, queue: str) -> None:
        """One link of a chain of tasks that do nothing but send the next: the broker's and
        the worker's own limit for a saga's traffic, which `make bench` measures the saga
        against. The last link counts the chain as done, in Redis."""
        if hops_left > 1:
            self.app.send_task(HOP_TASK, args=(token, hops_left - 1, queue), queue=queue)
        else:
            runtime.redis.incr(f"ordersaga:hops:{token}")
