"""What gunicorn itself answers, over a raw socket to the real gunicorn of the e2e stack.

gunicorn reads the request line and headers before the app does. Within its limits
(gunicorn.conf.py) a long URL or an over-long `X-Request-ID` reaches the app; beyond them, or when
the request is not valid HTTP, gunicorn refuses it, and the refusal is problem+json with an
`X-Request-ID` like every other error. `requests` cannot send most of these requests, hence bytes.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Stack
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
NEW_ID = re.compile(r"[0-9a-f]{32}")  # app.logs.new_request_id


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/problem+json"), self
        body: dict[str, Any] = json.loads(self.body)
        assert set(body) == PROBLEM_KEYS, body
        assert body["status"] == self.status, body
        return body

    def new_request_id(self) -> str:
        request_id = self.headers.get("x-request-id", "")
        assert NEW_ID.fullmatch(request_id), self
        return request_id


def exchange(stack: Stack, request: bytes) -> Answer:
    """Send `request` as it is and read the answer until gunicorn closes the connection."""
    port = urlsplit(stack.base_url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split(" ")[1]), headers, body)


def get(target: str, *headers: bytes) -> bytes:
    lines = [f"GET {target} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def post_goods(*headers: bytes) -> bytes:
    lines = [b"POST /api/v1/goods HTTP/1.1", b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n{}"


def target_for_request_line(length: int) -> str:
    """A path that makes `GET <path> HTTP/1.1` exactly `length` bytes long."""
    return "/" + "a" * (length - len("GET / HTTP/1.1"))


def test_a_request_line_of_5000_bytes_reaches_the_app(stack: Stack) -> None:
    answer = exchange(stack, get(target_for_request_line(5000)))
    assert answer.status == 404  # the app's answer: gunicorn knows no routes
    assert answer.problem()["code"] == "not-found"
    answer.new_request_id()


def test_a_request_line_beyond_the_limit_is_a_414_problem(stack: Stack) -> None:
    answer = exchange(stack, get(target_for_request_line(9000)))
    assert answer.status == 414
    assert answer.problem()["code"] == "validation"
    answer.new_request_id()


def test_an_over_long_request_id_reaches_the_app_and_is_replaced(stack: Stack) -> None:
    sent = "r" * 10_000
    answer = exchange(stack, get("/healthz", f"X-Request-ID: {sent}".encode()))
    assert answer.status == 200
    request_id = answer.new_request_id()
    assert request_id != sent
    wait_until(lambda: f"request_id={request_id}" in stack.api.log(), timeout=10, what="the app's log line")


def test_a_header_beyond_the_field_size_limit_is_a_431_problem(stack: Stack) -> None:
    answer = exchange(stack, get("/healthz", b"X-Padding: " + b"p" * 20_000))
    assert answer.status == 431
    assert answer.problem()["code"] == "validation"
    answer.new_request_id()


@pytest.mark.parametrize(
    "headers",
    [
        (b"Content-Type: application/json\x01", b"Content-Length: 2"),
        (b"Content-Type: application/json", b"Content-Length: two"),
    ],
    ids=["content-type-with-a-control-byte", "non-numeric-content-length"],
)
def test_a_malformed_header_is_a_400_problem(stack: Stack, headers: tuple[bytes, bytes]) -> None:
    answer = exchange(stack, post_goods(*headers))
    assert answer.status == 400
    assert answer.problem()["code"] == "validation"
    answer.new_request_id()


def test_gunicorn_logs_one_listening_line_and_no_control_socket(stack: Stack) -> None:
    log = stack.api.log()
    listening = [line for line in log.splitlines() if "Listening at" in line]
    assert len(listening) == 1, listening
    assert f"127.0.0.1:{urlsplit(stack.base_url).port}" in listening[0]
    assert "Control socket listening" not in log
