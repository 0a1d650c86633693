"""The worker's consumer, hardened against a broker restart.

When the Redis broker drops a connection while the worker holds unacknowledged messages,
Celery (5.7) closes the broken connection before reconnecting; kombu's Redis channel then tries
to restore those messages through the connection it is tearing down and raises AttributeError
("'NoneType' object has no attribute 'hostname'"). Celery's `ignore_errors` only swallows
connection errors, so the worker exits ("Unrecoverable error"); see celery#8030, #9250, #10205
for the family. Closing tolerantly lets Celery go on to reconnect, as it is built to; the
messages it could not restore come back by Redis' visibility timeout, and the saga sweep
re-drives their sagas long before that.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer

log = logging.getLogger(__name__)


class ResilientConsumer(Consumer):  # type: ignore[misc]
    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            close = connection.close

            def tolerant_close(*args: Any, **kwargs: Any) -> Any:
                try:
                    return close(*args, **kwargs)
                except AttributeError:
                    log.warning(
                        "broken broker connection did not close cleanly; reconnecting anyway", exc_info=True
                    )
                    return None

            connection.close = tolerant_close
        super().on_connection_error_after_connected(exc)
