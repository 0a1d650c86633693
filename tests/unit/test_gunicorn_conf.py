"""gunicorn.conf.py: its defaults, its refusal of bad values, and its per-worker hooks."""

from __future__ import annotations

import gc
import logging
import runpy
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker

from app.gunicorn_worker import ProblemWorker

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    monkeypatch.setenv("ORDERSAGA_ENV", "development")
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def gunicorn_config(monkeypatch: pytest.MonkeyPatch) -> Config:
    """The settings as gunicorn takes them from the file: it skips any name that is not one of its
    settings, so a misspelt setting would be ignored without a word."""
    cfg = Config()
    for name, value in load(monkeypatch).items():
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg


def test_two_workers_of_four_threads_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    assert (conf["workers"], conf["threads"]) == (2, 4)


def test_the_environment_sets_workers_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, GUNICORN_WORKERS="3", GUNICORN_THREADS="5")
    assert (conf["workers"], conf["threads"]) == (3, 5)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_count_stops_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit):
        load(monkeypatch, GUNICORN_WORKERS=value)
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "GUNICORN_WORKERS" in message and repr(value) in message


def test_a_worker_freezes_what_the_app_was_built_from(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    gc.unfreeze()
    try:
        conf["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_there_is_no_control_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gunicorn_config(monkeypatch).control_socket_disable is True


def test_the_request_limits_are_raised_but_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = gunicorn_config(monkeypatch)
    assert cfg.limit_request_line == 8190  # gunicorn's largest; 0 would be no limit
    assert len("X-Request-ID: " + "r" * 10_000 + "\r\n") < cfg.limit_request_field_size <= 65536
    assert 0 < cfg.limit_request_fields <= 100


def test_the_worker_is_gthread_answering_refusals_as_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = gunicorn_config(monkeypatch)
    assert cfg.worker_class is ProblemWorker and issubclass(ProblemWorker, ThreadWorker)
    assert cfg.reuse_port is True


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_only_the_listening_line_without_an_address_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = gunicorn_config(monkeypatch)
    log = cfg.logger_class(cfg)
    collect = Collect()
    log.error_log.addHandler(collect)
    try:
        log.info("Listening at: %s (%s)", "", 4242)  # the arbiter's, when the workers make the sockets
        log.info("Listening at: %s (%s)", "127.0.0.1:8000", 4242)
        log.info("Using worker: %s", "gthread")
    finally:
        log.error_log.removeHandler(collect)
    assert collect.messages == ["Listening at: 127.0.0.1:8000 (4242)", "Using worker: gthread"]
