"""A bad setting stops every process at start with one line naming the variable."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.support.env import REPO, process_env, service_env

COMMANDS = {
    "api": [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", "127.0.0.1:0"],
    "worker": [sys.executable, "-m", "celery", "-A", "celery_worker", "worker"],
    "beat": [sys.executable, "-m", "celery", "-A", "celery_worker", "beat"],
    "migrations": [sys.executable, "-m", "alembic", "upgrade", "head"],
}
BAD = [
    ("ORDERSAGA_PAYMENT_TIMEOUT_SECONDS", "abc"),
    ("ORDERSAGA_SWEEP_INTERVAL_SECONDS", "-5"),
    ("ORDERSAGA_ENV", "staging"),
    ("DATABASE_URL", "mysql://x"),
    ("CELERY_BROKER_URL", "nope"),
    ("ORDERSAGA_CURRENCY", "yuan"),
    ("ORDERSAGA_LOG_FORMAT", "xml"),
    ("ORDERSAGA_ADMIN_TOKEN", ""),
    # Alipay enabled without its settings: the message names the first one missing.
    ("ORDERSAGA_PAYMENT_PROVIDER", "sandbox,alipay"),
]


@pytest.mark.parametrize("process", list(COMMANDS))
@pytest.mark.parametrize(("variable", "value"), BAD, ids=[b[0] for b in BAD])
def test_bad_setting_stops_the_process_with_one_line(process: str, variable: str, value: str) -> None:
    env = service_env("sqlite:///var/never-created.sqlite3", "redis://127.0.0.1:6379/0")
    env[variable] = value
    result = subprocess.run(
        COMMANDS[process], cwd=REPO, env=process_env(env), capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert variable in lines[0]


def test_the_api_will_not_share_a_port_that_something_already_listens_on() -> None:
    """gunicorn listens with SO_REUSEPORT (one socket per worker), which would let a second
    deployment on the same port take half the connections silently; it must refuse instead."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        env = service_env("sqlite:///var/never-created.sqlite3", "redis://127.0.0.1:6379/0")
        argv = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"]
        result = subprocess.run(
            argv, cwd=REPO, env=process_env(env), capture_output=True, text=True, timeout=60
        )
    finally:
        holder.close()
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: already in use" in result.stderr.splitlines()[-1]
