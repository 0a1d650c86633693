"""Payment tasks on the `payments` queue: the payment timeout and refunds of late money.

Both ask the provider over the network and are safe to run twice; a provider that is down is
retried with backoff.
"""

from __future__ import annotations

from celery import shared_task

from app.payments.port import ProviderUnavailable
from app.services import payment_events
from app.state import state

RETRY = {
    "autoretry_for": (ProviderUnavailable, ConnectionError, OSError),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 20,
}


@shared_task(name=payment_events.TIMEOUT_TASK, **RETRY)
def payment_timeout(saga_id: str, order_id: str) -> str:
    app_state = state()
    return payment_events.expire_payment(app_state.db.uow, app_state.engine, app_state.provider, order_id)


@shared_task(name=payment_events.REFUND_TASK, **RETRY)
def refund_late_payment(order_id: str) -> str:
    app_state = state()
    return payment_events.refund_late_payment(
        app_state.db.uow, app_state.engine, app_state.provider, order_id
    )
