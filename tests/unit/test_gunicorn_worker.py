"""app/gunicorn_worker.py: gunicorn's refusals as problem+json, in process over a socket pair."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.errors import InvalidHeader, InvalidRequestLine, LimitRequestHeaders, LimitRequestLine

from app.gunicorn_worker import ProblemWorker, problem_answer
from app.logs import valid_request_id
from app.problems import CODE_BY_STATUS, problem_body


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def worker() -> Iterator[ProblemWorker]:
    cfg = Config()
    worker = ProblemWorker(1, os.getpid(), [], None, 30, cfg, Logger(cfg))
    yield worker
    worker.tmp.close()


def refuse(worker: ProblemWorker, error: BaseException) -> tuple[bytes, list[logging.LogRecord]]:
    """What the worker writes to the client for `error`, and what it logs."""
    ours, theirs = socket.socketpair()
    collect = Collect()
    worker.log.error_log.addHandler(collect)
    try:
        worker.handle_error(None, ours, ("127.0.0.1", 40000), error)
    finally:
        worker.log.error_log.removeHandler(collect)
        ours.close()
    with theirs:
        return theirs.makefile("rb").read(), collect.records


def parse(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    assert int(headers["content-length"]) == len(body)
    return int(status_line.split(" ")[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (LimitRequestLine(9000, 8190), 414),
        (LimitRequestHeaders("limit request headers fields size"), 431),
        (InvalidHeader("CONTENT-LENGTH"), 400),
        (InvalidRequestLine("HELLO"), 400),
    ],
)
def test_a_refusal_is_a_validation_problem_with_a_new_request_id(
    worker: ProblemWorker, error: BaseException, status: int
) -> None:
    answer, logged = refuse(worker, error)
    got, headers, body = parse(answer)
    assert got == status and body["status"] == status and body["code"] == "validation"
    assert headers["content-type"] == "application/problem+json"
    assert valid_request_id(headers["x-request-id"])
    assert headers["connection"] == "close"
    # still logged by gunicorn, as gunicorn logs it, and then the id the client was given
    assert [r.getMessage() for r in logged] == [
        f"Invalid request from ip=127.0.0.1: {error}",
        f"refused with {status}: request_id={headers['x-request-id']}",
    ]


def test_the_details_name_the_configured_limits(worker: ProblemWorker) -> None:
    worker.cfg.set("limit_request_line", 1234)
    worker.cfg.set("limit_request_field_size", 5678)
    worker.cfg.set("limit_request_fields", 42)
    line = parse(refuse(worker, LimitRequestLine(9000, 1234))[0])[2]["detail"]
    assert line == "The request line is longer than 1234 bytes."
    headers = str(parse(refuse(worker, LimitRequestHeaders("max buffer headers"))[0])[2]["detail"])
    assert "5678 bytes" in headers and "42 header fields" in headers


def test_an_error_that_is_not_the_clients_is_an_internal_problem(worker: ProblemWorker) -> None:
    try:  # gunicorn's handle_error runs inside the handler of what the request raised
        raise RuntimeError("boom")
    except RuntimeError as error:
        answer, logged = refuse(worker, error)
    status, _, body = parse(answer)
    assert (status, body["code"]) == (500, "internal")
    assert "boom" not in str(body["detail"])
    exc_info = logged[0].exc_info
    assert exc_info is not None and exc_info[0] is RuntimeError  # gunicorn's traceback


@pytest.mark.parametrize("status", [400, 403, 414, 431])
def test_the_codes_and_body_are_the_apps(status: int) -> None:
    answer = parse(problem_answer(status, "why", "id-1"))
    assert answer[2] == problem_body(status, CODE_BY_STATUS[status], "why")
    assert answer[1]["x-request-id"] == "id-1"
