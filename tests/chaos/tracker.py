"""Where each order stands, read for every waiting buyer at once.

Buyers wait for their orders to move; polling the API for each of a few hundred of them would
load the machine more than the run itself. One thread reads every waited order's status from the
database a few times a second instead, and wakes the buyers whose order has moved. What the
buyers act on (the checkout URL, the final order) they still get from the API.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.exc import SQLAlchemyError

POLL_SECONDS = 0.3
QUERY = text("SELECT id, status FROM orders WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


class Tracker:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statuses: dict[str, str] = {}
        self.waited: dict[str, int] = {}
        self.changed = threading.Condition()
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> Tracker:
        self.thread.start()
        return self

    def close(self) -> None:
        self.running = False
        self.thread.join(5)

    def wait(self, order_id: str, statuses: tuple[str, ...], timeout: float) -> str | None:
        """The order's status once it is one of `statuses`; None if it is not by `timeout`."""
        deadline = time.monotonic() + timeout
        with self.changed:
            self.waited[order_id] = self.waited.get(order_id, 0) + 1
            try:
                while (status := self.statuses.get(order_id)) not in statuses:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self.changed.wait(left)
                return status
            finally:
                self.waited[order_id] -= 1
                if not self.waited[order_id]:
                    del self.waited[order_id]

    def _poll(self) -> None:
        while self.running:
            with self.changed:
                ids = list(self.waited)
            if ids:
                try:
                    with self.engine.connect() as connection:
                        rows = connection.execute(QUERY, {"ids": ids}).all()
                except SQLAlchemyError:  # the database is down or restarting: a fault of the run
                    rows = []
                with self.changed:
                    self.statuses.update({order_id: status for order_id, status in rows})
                    self.changed.notify_all()
            time.sleep(POLL_SECONDS)
