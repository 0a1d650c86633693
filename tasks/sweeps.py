"""The scheduler's backstop: every ORDERSAGA_SWEEP_INTERVAL_SECONDS, beat sends `orders.sweep`.

It sends outbox messages that were never sent (the broker was down after a commit) and
re-drives sagas that have not moved for ORDERSAGA_SAGA_STALE_SECONDS (a worker died, or the
broker lost its messages). Both are safe to run twice at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task

from app import outbox
from app.services import payment_events
from app.state import state

log = logging.getLogger(__name__)

SWEEP_TASK = "orders.sweep"


@shared_task(name=SWEEP_TASK, acks_late=False, ignore_result=True)
def sweep() -> dict[str, int]:
    app_state = state()
    relay = app_state.relay
    sent = relay.send_overdue() if relay is not None else 0
    stale = timedelta(seconds=app_state.settings.saga_stale_seconds)
    redriven = app_state.engine.redrive_stale(stale)
    with app_state.db.uow() as uow:
        overdue = payment_events.overdue_orders(uow)
        for saga_id, order_id in overdue:  # their ETA task was lost, or is about to run: both fine
            outbox.add(
                uow, payment_events.TIMEOUT_TASK, {"saga_id": saga_id, "order_id": order_id}, "payments"
            )
        uow.commit()
    if sent or redriven or overdue:
        log.info(
            "sweep: sent %s outbox messages, re-drove %s sagas, timed out %s", sent, redriven, len(overdue)
        )
    return {"sent": sent, "redriven": redriven, "overdue": len(overdue)}
