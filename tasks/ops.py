"""Operational tasks."""

from __future__ import annotations

import json
import os

from celery import Celery, Task
from flask import current_app, has_app_context

from app.bootstrap import Runtime


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
