"""Sending committed outbox messages from a thread of the process's own.

A request that commits an order need not wait for the broker: it hands the messages it committed
to this thread and answers. The thread sends what has gathered since its last round in one go,
on one broker connection, and marks them all sent in one statement; under load one round carries
many requests' messages, so the broker's and the database's cost per order falls as the load
rises. A message the thread never sends (the broker refuses it, or the process dies first) is
committed in the outbox all the same, and the sweep sends it, as after any relay failure.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from typing import Any

from app.relay import OutboxRelay

log = logging.getLogger(__name__)

_STOP: list[Any] = []  # the sentinel `stop` queues (an empty batch is never queued otherwise)


class RelayThread:
    """The unit of work's `after_commit` in the API: `db.after_commit = RelayThread(relay)`.

    The thread starts on first use in each process, so a process forked after building it (a
    gunicorn worker from a preloading master) has its own, and never one inherited half-way.
    """

    def __init__(self, relay: OutboxRelay, max_batch: int = 500) -> None:
        self.relay = relay
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def __call__(self, messages: list[Any]) -> None:
        if messages:
            self._running().put(messages)

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued, then end the thread (at the process's exit)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    def _running(self) -> queue.SimpleQueue[list[Any]]:
        with self._lock:
            if self._pid != os.getpid():  # first use here: a parent's thread did not survive the fork
                self._pid = os.getpid()
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
                self._thread.start()
                atexit.register(self.stop)
            return self._queue

    def _run(self) -> None:
        while True:
            batch, stopping = self._gather()
            if batch:
                try:
                    self.relay.send(batch)
                except Exception:  # committed already: the sweep sends what did not go out
                    ids = [message.id for message in batch]
                    log.warning("outbox relay failed; the sweep will send messages %s", ids, exc_info=True)
            if stopping:
                return

    def _gather(self) -> tuple[list[Any], bool]:
        """Wait for messages, then take every one queued meanwhile, up to `max_batch`."""
        batch: list[Any] = []
        handed = self._queue.get()
        while True:
            if handed is _STOP:
                return batch, True
            batch.extend(handed)
            if len(batch) >= self.max_batch:
                return batch, False
            try:
                handed = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
