"""The member system's work, on its own `members` queue."""

from __future__ import annotations

from celery import Celery

from app.bootstrap import Runtime
from app.services import members


def register(celery_app: Celery, runtime: Runtime) -> None:
    @celery_app.task(
        name=members.CREDIT_POINTS_TASK,
        autoretry_for=(Exception,),
        retry_backoff=2,
        retry_backoff_max=60,
        retry_jitter=True,
        max_retries=None,  # points are never given up on; the credit is idempotent
    )
    def credit_points(order_id: str) -> int:
        with runtime.db.uow() as uow:
            return members.credit_points(uow, order_id)
