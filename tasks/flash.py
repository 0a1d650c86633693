"""Flash-sale tasks: releasing the winners' sagas, and giving a cancelled order's units back to
the Redis gate."""

from __future__ import annotations

import time

from celery import Celery

from app.bootstrap import Runtime
from app.services import flash_pacing
from app.services.order_saga import GIVE_BACK_TASK
from tasks.schedules import WhenNeeded

RELEASE_TASK = "orders.flash.release"
RELEASE_EVERY_SECONDS = 1.0  # while a first step is held, beat sends RELEASE_TASK this often


class WhileHeld(WhenNeeded):
    """Beat's schedule for RELEASE_TASK: due only while a winner's first step is held in the
    outbox (app/relay.py); with none held there is nothing to release."""

    def needed(self, runtime: Runtime) -> bool:
        return runtime.relay is not None and bool(runtime.relay.holds_any())


def register(celery_app: Celery, runtime: Runtime) -> None:
    @celery_app.task(name=RELEASE_TASK, acks_late=False, ignore_result=True)
    def release() -> int:
        """A lost or expired tick delays the sagas to the next one, which catches up."""
        settings = runtime.settings
        if runtime.relay is None:
            return 0
        return flash_pacing.release_sagas(
            runtime.relay.release_due,
            sagas_per_second=settings.flash_sagas_per_second,
            tick_seconds=RELEASE_EVERY_SECONDS,
            now_ms=int(time.time() * 1000),
        )

    @celery_app.task(
        name=GIVE_BACK_TASK,
        autoretry_for=(Exception,),
        retry_backoff=2,
        retry_backoff_max=60,
        retry_jitter=True,
        max_retries=20,
    )
    def give_back(sale_id: str, order_id: str, user_id: str, quantity: int) -> bool:
        """Exactly once per order (the gate remembers which orders it took back). If Redis lost
        the gate meanwhile, this does nothing: the rebuild from SQL already counts the order as
        cancelled."""
        return runtime.flash_gate.give_back(sale_id, order_id, user_id, quantity)
