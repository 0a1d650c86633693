"""Beat schedules for backstops that have nothing to do most of the time.

A routine tick that finds nothing still costs a message, two worker log lines and a row in
Flower's task list; sent every second it drowns the tasks an operator looks for. So these ask
the database first, once per `run_every` (one indexed read, neither a message nor a log line),
and are due only when there is work. When the question fails (the database is down, say), the
tick is sent anyway: a needless tick does nothing, a missed one would leave work waiting. A lost
tick is made up by the next one, which asks again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from celery import Celery
from celery.schedules import schedstate, schedule

from app.bootstrap import Runtime

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0  # while the question keeps failing, say so once a minute, not each tick


class WhenNeeded(schedule):
    """Every `run_every`, but only when `needed` finds work."""

    _warned_at = float("-inf")

    def needed(self, runtime: Runtime) -> bool:
        raise NotImplementedError

    def is_due(self, last_run_at: datetime) -> schedstate:
        due, next_check = super().is_due(last_run_at)
        return schedstate(due and self._ask(self.app), next_check)

    def _ask(self, celery_app: Celery) -> bool:
        try:
            return self.needed(celery_app.ordersaga_runtime)  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 - cannot tell: a needless tick is harmless
            if time.monotonic() - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = time.monotonic()
                name = type(self).__name__
                log.warning("%s cannot tell whether there is work (%s): sending anyway", name, error)
            return True
