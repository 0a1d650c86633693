"""Logging with the request id on every line, as text or as one JSON object per line.

The API takes the id from `X-Request-ID` (or makes one) and keeps it in a context variable; tasks
that a request caused carry it in a message header and put it back in the same variable, so one
id follows an order from the API through every task it causes. In JSON (ORDERSAGA_LOG_FORMAT=json)
each line also names the order, saga, task and step it is about, where they apply, so that a log
store can find one order's lines across every process.
"""

from __future__ import annotations

import json
import logging
import random
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
# order_id, saga_id, task_id, task, step: what the running request or task is about. Replaced
# whole, never changed in place.
log_context_var: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039

LOG_FORMATS = ("text", "json")
_chosen = {"format": "text"}


def use_format(name: str) -> None:
    """Text or JSON for the handlers set up from now on (each process calls it at start)."""
    _chosen["format"] = name


def set_context(**ids: str | None) -> None:
    log_context_var.set({name: value for name, value in ids.items() if value})


def clear_context() -> None:
    log_context_var.set({})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, RFC 3339), level, logger, process, message,
    request_id, the ids of the log context, and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            **log_context_var.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def new_request_id() -> str:
    """32 hex digits. An id that ties log lines together is no secret, so it comes from the
    process's own generator rather than os.urandom: no system call, which on the flash sale's
    hot path is one less place for a gunicorn thread to give up the GIL and wait to get it back.
    The random module reseeds itself in a forked child, so processes do not repeat each other's
    ids."""
    return f"{random.getrandbits(128):032x}"


def valid_request_id(value: str | None) -> bool:
    """1..200 printable ASCII characters: anything else is replaced by a new id, not echoed."""
    return value is not None and 1 <= len(value) <= 200 and all(" " <= c <= "~" for c in value)


def install_filter(handler: logging.Handler, fmt: str = LOG_FORMAT) -> None:
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if _chosen["format"] == "json" else logging.Formatter(fmt))


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
