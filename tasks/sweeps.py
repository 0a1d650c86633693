"""The scheduler's backstop: every ORDERSAGA_SWEEP_INTERVAL_SECONDS, beat sends `orders.sweep`.

It sends outbox messages that were never sent (the broker was down after a commit) and
re-drives sagas that have not moved for ORDERSAGA_SAGA_STALE_SECONDS (a worker died, or the
broker lost its messages). It queues the payment timeout's ETA task of orders whose deadline
came near (payment_events.timeout_horizon), and the timeout again, due now, of orders still
awaiting payment past their deadline (once, then after the stale limit, twice it, and so on). It
queues again the
refunds of money held for cancelled orders that have not moved for as long, and the points of
confirmed orders not credited after as long (then after twice as long, and so on), returns an ended
flash sale's unsold units, and purges outbox messages sent longer ago than
ORDERSAGA_OUTBOX_RETENTION_SECONDS. Every part is safe to run twice at once.

What it sends again (a re-drive, a timeout, a refund, points) it sends only into a queue that
has drained: while messages wait in a queue, the one the sweep would replace may be among them,
and a copy of each would only lengthen the wait. A message the broker lost goes out again once
its queue is empty, which is what a broker that lost its messages leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from celery import Celery

from app.backoff import longest_wait
from app.bootstrap import Runtime
from app.broker import QUEUES, queue_depths
from app.services import flash_sales, members, payment_events

log = logging.getLogger(__name__)

SWEEP_TASK = "orders.sweep"

# A queue holding fewer messages than this is not behind: under a steady load a few messages
# are always in passage, and a lost one must not wait for the load to stop.
BEHIND_AT = 20


def register(celery_app: Celery, runtime: Runtime) -> None:
    @celery_app.task(name=SWEEP_TASK, acks_late=False, ignore_result=True)
    def sweep() -> dict[str, int]:
        return sweep_once(runtime)


def sweep_once(runtime: Runtime) -> dict[str, int]:
    """Each part runs even if another fails (a bad outbox row must not stop the re-driving);
    the first failure is raised at the end, so the task still shows as failed in Flower."""
    stale = timedelta(seconds=runtime.settings.saga_stale_seconds)
    retention = timedelta(seconds=runtime.settings.outbox_retention_seconds)
    behind = queues_behind(runtime.settings.broker_url)
    wait = {queue: longest_wait(stale) if queue in behind else stale for queue in QUEUES}
    parts: dict[str, Callable[[], int]] = {
        "sent": lambda: runtime.relay.send_overdue() if runtime.relay is not None else 0,
        "redriven": lambda: runtime.engine.redrive_stale(stale, behind=behind),
        "timeouts_queued": lambda: _queue_near_timeouts(runtime),
        "overdue": lambda: _queue_overdue_timeouts(runtime, stale, payment_events.QUEUE in behind),
        "flash_units_returned": lambda: _settle_flash_sales(runtime),
        "refunds_requeued": lambda: _requeue_refunds(runtime, wait[payment_events.QUEUE]),
        "points_requeued": lambda: _requeue_points(runtime, wait[members.QUEUE]),
        "purged": lambda: runtime.relay.purge_sent(retention) if runtime.relay is not None else 0,
    }
    counts: dict[str, int] = {}
    failures: list[Exception] = []
    for name, part in parts.items():
        try:
            counts[name] = part()
        except Exception as error:
            log.exception("sweep: %s failed", name)
            failures.append(error)
    if any(counts.values()) or behind:
        log.info("sweep: %s%s", counts, f"; backlogs in {sorted(behind)}" if behind else "")
    if failures:
        raise failures[0]
    return counts


def queues_behind(broker_url: str) -> set[str]:
    """The queues with a backlog; none if the broker cannot be asked (what the sweep sends then
    fails alike, and goes out with a later sweep)."""
    try:
        depths = queue_depths(broker_url)
    except Exception:  # logged; the sweep goes on as if every queue had drained
        log.warning("sweep: could not read the queues' depths", exc_info=True)
        return set()
    return {queue for queue, depth in depths.items() if depth >= BEHIND_AT}


def _queue_near_timeouts(runtime: Runtime) -> int:
    horizon = payment_events.timeout_horizon(timedelta(seconds=runtime.settings.sweep_interval_seconds))
    with runtime.db.uow() as uow:
        return payment_events.queue_near_timeouts(uow, horizon)


def _requeue_refunds(runtime: Runtime, stale: timedelta) -> int:
    with runtime.db.uow() as uow:
        return payment_events.queue_unfinished_refunds(uow, stale)


def _requeue_points(runtime: Runtime, stale: timedelta) -> int:
    with runtime.db.uow() as uow:
        return members.queue_uncredited(uow, stale)


def _settle_flash_sales(runtime: Runtime) -> int:
    with runtime.db.uow() as uow:
        return flash_sales.settle_ended(uow)


def _queue_overdue_timeouts(runtime: Runtime, stale: timedelta, behind: bool) -> int:
    """Orders past their payment deadline whose ETA task was lost (or is about to run: both
    fine). Into a backlog, only those overdue by the longest wait, and again after as long."""
    if not behind:
        with runtime.db.uow() as uow:
            return payment_events.queue_overdue_timeouts(uow, stale)
    wait = longest_wait(stale)
    with runtime.db.uow() as uow:
        return payment_events.queue_overdue_timeouts(uow, wait, overdue_by=wait)
