"""gunicorn's gthread worker, answering the requests gunicorn refuses as the contract says.

gunicorn parses the request line and headers before the app sees a request, and refuses what it
cannot parse or what is beyond its limits (gunicorn.conf.py) with an HTML page without an
`X-Request-ID`. The contract wants every answer to carry an `X-Request-ID` and every error to be
application/problem+json, so this worker sends those refusals in that shape instead, with a new
id: the request's own id, if it sent one, was never read.

gunicorn's `handle_error` still decides the status and logs the refusal as it always does; it is
handed a `_Recorder` in place of the client socket, and only the status of the page it writes
there is kept.
"""

from __future__ import annotations

import json
import socket
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from app.logs import new_request_id
from app.problems import CODE_BY_STATUS, PROBLEM_JSON, problem_body

INTERNAL_DETAIL = "An internal error occurred; it has been logged."
MAX_DETAIL = 200  # gunicorn's message can quote a whole request line


class _Recorder:
    """Takes the place of the client socket: keeps what gunicorn's error page writes to it."""

    def __init__(self) -> None:
        self.data = bytearray()

    def gettimeout(self) -> float:
        return 0.0  # non-blocking already: gunicorn writes without changing the mode

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> int:
        """The status of the recorded answer (`HTTP/1.1 414 URI Too Long`); 500 if none."""
        parts = bytes(self.data).split(b" ", 2)
        return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 500


class ProblemWorker(ThreadWorker):
    """gunicorn's gthread worker, with its refusals answered as application/problem+json."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        recorder = _Recorder()
        super().handle_error(req, recorder, addr, exc)
        status = recorder.status()
        request_id = new_request_id()
        # The id the client is given, in a log line, as for every answer the app gives.
        self.log.info("refused with %s: request_id=%s", status, request_id)
        try:
            util.write_nonblock(client, problem_answer(status, self.detail(status, exc), request_id))
        except Exception:  # noqa: BLE001 - the client is gone, as gunicorn assumes too
            self.log.debug("Failed to send error message.")

    def detail(self, status: int, exc: BaseException) -> str:
        """What the client can correct: the limit it went beyond, or what gunicorn could not parse."""
        if status == 414:
            return f"The request line is longer than {self.cfg.limit_request_line} bytes."
        if status == 431:
            return (
                f"A header line is longer than {self.cfg.limit_request_field_size} bytes, or there are"
                f" more than {self.cfg.limit_request_fields} header fields."
            )
        if status == 500:
            return INTERNAL_DETAIL  # about the app or the server, not the request
        return str(exc)[:MAX_DETAIL] or HTTPStatus(status).phrase


def problem_answer(status: int, detail: str, request_id: str) -> bytes:
    """The whole HTTP answer: the status, a new X-Request-ID and app/api/problems.py's body."""
    code = "internal" if status >= 500 else CODE_BY_STATUS.get(status, "error")
    body = json.dumps(problem_body(status, code, detail)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body
