"""Payment tasks on the `payments` queue: the payment timeout and refunds of late money.

Both ask the provider over the network and are safe to run twice; a provider that is down is
retried with backoff.
"""

from __future__ import annotations

from celery import Celery

from app.bootstrap import Runtime
from app.payments.port import ProviderUnavailable
from app.services import payment_events

RETRY = {
    "autoretry_for": (ProviderUnavailable, ConnectionError, OSError),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 20,
}


def register(celery_app: Celery, runtime: Runtime) -> None:
    @celery_app.task(name=payment_events.TIMEOUT_TASK, **RETRY)
    def payment_timeout(saga_id: str, order_id: str) -> str:
        return payment_events.expire_payment(runtime.db.uow, runtime.engine, runtime.providers, order_id)

    @celery_app.task(name=payment_events.REFUND_TASK, **RETRY)
    def refund_late_payment(order_id: str) -> str:
        return payment_events.refund_late_payment(runtime.db.uow, runtime.engine, runtime.providers, order_id)
