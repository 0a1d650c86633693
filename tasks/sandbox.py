"""The sandbox provider's background work, on its own `sandbox` queue: delivering its webhooks.

Like the rest of the sandbox, these import nothing of the shop: they POST to the payment's
`callback_url`, whatever shop listens there.
"""

from __future__ import annotations

from celery import Celery, Task

from app.bootstrap import Runtime
from app.sandbox import webhooks
from tasks.schedules import WhenNeeded


def register(celery_app: Celery, runtime: Runtime) -> None:
    @celery_app.task(bind=True, name=webhooks.DELIVER_TASK, max_retries=None, ignore_result=True)
    def deliver_webhook(self: Task, delivery_id: str) -> str:
        """One delivery attempt; a failed one comes back after its back-off (the row caps attempts)."""
        secret = runtime.settings.sandbox_webhook_secret
        attempt = webhooks.attempt_delivery(runtime.db, delivery_id, secret)
        if attempt.outcome == "retry":
            raise self.retry(countdown=attempt.retry_in)
        return attempt.outcome

    @celery_app.task(name=webhooks.REDELIVER_TASK, acks_late=False, ignore_result=True)
    def redeliver_pending() -> int:
        """Send again the deliveries whose message was lost (broker down at commit, worker killed)."""
        return webhooks.redeliver(runtime.db)


class WhileOverdue(WhenNeeded):
    """Beat's schedule for the redelivery sweep: due only while a delivery is overdue."""

    def needed(self, runtime: Runtime) -> bool:
        return webhooks.any_overdue(runtime.db)
