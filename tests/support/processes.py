"""Real processes for integration and end-to-end tests: celery workers and gunicorn.

Each is started from the repository root, as the contract's process table says, with its
output in a log file that a failing test prints.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.support.env import REPO, process_env

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str | Callable[[], str] = "",
) -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`
    (a callable is asked at the end, so the message shows the state that timed out)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {described or predicate}")
        time.sleep(interval)


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = process_env(env)
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _signal_group(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown; SIGKILL whatever is left after `timeout`."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(5)
        self._signal_group(signal.SIGKILL)  # children that outlived their parent
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the whole process group at once: no cleanup, no acknowledgements."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None


def celery_worker(
    env: dict[str, str],
    log_dir: Path,
    queues: list[str] | None = None,
    concurrency: int = 1,
    name: str = "worker",
) -> Process:
    argv = [sys.executable, "-m", "celery", "-A", "celery_worker", "worker", "--loglevel", "INFO"]
    argv += ["--concurrency", str(concurrency), "--hostname", f"{name}-{os.getpid()}@%h", "--without-mingle"]
    if queues:
        argv += ["-Q", ",".join(queues)]
    return Process(name, argv, env, log_dir)


def celery_beat(env: dict[str, str], log_dir: Path, name: str = "beat") -> Process:
    schedule = log_dir / f"{name}-schedule"
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "celery_worker",
        "beat",
        "--loglevel",
        "INFO",
        "-s",
        str(schedule),
    ]
    return Process(name, argv, env, log_dir)


def celery_flower(env: dict[str, str], log_dir: Path, port: int, name: str = "flower") -> Process:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "celery_worker",
        "flower",
        f"--port={port}",
        "--address=127.0.0.1",
    ]
    return Process(name, argv, env, log_dir)


def gunicorn(env: dict[str, str], log_dir: Path, port: int, workers: int = 2, name: str = "api") -> Process:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "wsgi:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    return Process(name, argv, env, log_dir)
