"""gunicorn.conf.py: its defaults, its refusal of bad values, and its per-worker hooks."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path
from typing import Any

import pytest

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    monkeypatch.setenv("ORDERSAGA_ENV", "development")
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


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
