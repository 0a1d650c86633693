"""Logging with the request id on every line.

The API takes the id from `X-Request-ID` (or makes one) and keeps it in a context variable; tasks
that a request caused carry it in a message header and put it back in the same variable, so one
id follows an order from the API through every task it causes.
"""

from __future__ import annotations

import logging
import secrets
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def new_request_id() -> str:
    return secrets.token_hex(16)


def valid_request_id(value: str | None) -> bool:
    """1..200 printable ASCII characters: anything else is replaced by a new id, not echoed."""
    return value is not None and 1 <= len(value) <= 200 and all(" " <= c <= "~" for c in value)


def install_filter(handler: logging.Handler, fmt: str = LOG_FORMAT) -> None:
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(fmt))


def configure_logging(level: int = logging.INFO) -> None:
    """Give the root logger one handler with the request id, unless someone configured it."""
    root = logging.getLogger()
    if not root.handlers:
        stream_handler = logging.StreamHandler()
        install_filter(stream_handler)
        root.addHandler(stream_handler)
        root.setLevel(level)
    else:
        for handler in root.handlers:
            if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                install_filter(handler)
