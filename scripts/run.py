"""`make run`: the whole service on the embedded defaults, with demo data.

Makes sure a Redis answers (the configured one, else the default port, else a private
redis-server under var/), migrates the SQLite default, seeds demo data, and runs the API,
a worker, beat and Flower together under honcho. Ctrl-C stops all of them, and is a clean stop:
make run then exits 0, so make has no error to report.

While it runs, it holds var/make-run.json: the settings it runs with. A command started beside it
from the repository root with no ordersaga setting in its environment takes them from there
(app/config.py, `join_make_run`), so `.venv/bin/celery -A celery_worker saga list` needs nothing
exported, even when the Redis is a private one on a random port.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from scripts import servers

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"


def _configured_redis() -> str | None:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    return os.environ.get("REDIS_URL") or (broker if broker.startswith(("redis:", "rediss:")) else None)


def claim_settings_file(path: Path) -> TextIO:
    """Open `path` and lock it for as long as this make run runs.

    The lock is what tells other processes that the file describes a make run that is running:
    the kernel drops it when this process ends, however it ends. A second make run in the same
    checkout would share its database, beat schedule and metrics, so it stops here instead.
    """
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+", encoding="utf-8")
    deadline = time.monotonic() + 2  # a command reading the file holds a shared lock a moment
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                sys.exit(f"make run: another make run is running in {REPO} (it holds {path}); stop it first")
            time.sleep(0.05)
    handle.truncate(0)  # what a make run that was killed left: not this one's settings
    return handle


def publish_settings(handle: TextIO, environ: dict[str, str]) -> None:
    """Write the settings this make run's processes get, for the commands typed beside it."""
    from app.config import DEVELOPMENT_WARNING_GIVEN, is_setting  # loaded after the environment is set

    settings = {
        name: value
        for name, value in sorted(environ.items())
        if is_setting(name) and name != DEVELOPMENT_WARNING_GIVEN  # a command beside it says so itself
    }
    handle.seek(0)
    handle.truncate()
    json.dump(settings, handle, indent=2)
    handle.write("\n")
    handle.flush()


def run_until_stopped(argv: list[str]) -> int:
    """Run honcho until it ends; a Ctrl-C (SIGTERM, SIGHUP) stops it and counts as success.

    honcho runs in a process group of its own, so the terminal's Ctrl-C (or Ctrl-\\) reaches make
    and this process only; this process passes it on and waits for honcho to stop everything.
    honcho itself would exit 130 after a Ctrl-C, which make reports as an error.

    honcho writes to a terminal of its own (a pty, so that it keeps its colours) or a pipe, which
    this process copies to its output. When that output goes away (the terminal was closed, or
    the `tee` that make run was piped to died of the same Ctrl-C), honcho, writing to it itself,
    would fail in the middle of stopping and leave the processes running.
    """
    honcho: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if honcho is not None:
            honcho.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, stop)
    reader, writer = pty.openpty() if sys.stdout.isatty() else os.pipe()
    honcho = subprocess.Popen(argv, stdout=writer, stderr=writer, process_group=0)
    os.close(writer)
    if stopping:  # the signal came before honcho was there to receive it
        honcho.send_signal(signal.SIGINT)
    _copy_output(reader)
    code = honcho.wait()
    return 0 if stopping else code


def _copy_output(reader: int) -> None:
    """Copy what honcho writes to our stdout until it is done; drop it once stdout fails."""
    sys.stdout.flush()
    out: int | None = sys.stdout.fileno()
    while True:
        try:
            data = os.read(reader, 65536)
        except OSError:  # EIO: every writer of the pty has closed it
            break
        if not data:
            break
        view = memoryview(data)
        while out is not None and view:
            try:
                view = view[os.write(out, view) :]
            except OSError:  # EPIPE, EIO: nobody reads our output any more
                out = None
    os.close(reader)


def main() -> int:
    os.chdir(REPO)
    VAR.mkdir(exist_ok=True)
    settings_path = VAR / "make-run.json"
    settings_file = claim_settings_file(settings_path)
    try:
        return _run(settings_file)
    except KeyboardInterrupt:
        return 0  # Ctrl-C while starting: what had started is stopped on the way out
    finally:
        settings_path.unlink(missing_ok=True)
        settings_file.close()


def _run(settings_file: TextIO) -> int:
    """Start everything and run it until it is stopped; a private Redis stops last."""
    os.environ.setdefault("ORDERSAGA_ENV", "development")
    redis = servers.ensure_redis(_configured_redis(), VAR / "redis")
    os.environ.setdefault("REDIS_URL", redis.url)
    os.environ.setdefault("CELERY_BROKER_URL", redis.url)
    metrics_dir = VAR / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counters of processes that no longer run
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    # Imported only now, after PROMETHEUS_MULTIPROC_DIR: the app's metrics read it when they load.
    from app.config import DEVELOPMENT_SECRETS_WARNING, DEVELOPMENT_WARNING_GIVEN, load_settings_or_exit

    settings = load_settings_or_exit()
    api_bind = settings.public_url.split("://", 1)[1].split("/", 1)[0]
    os.environ.setdefault("ORDERSAGA_API_BIND", api_bind)
    os.environ.setdefault("ORDERSAGA_FLOWER_PORT", "5555")
    os.environ.setdefault("ORDERSAGA_FLOWER_URL", f"http://127.0.0.1:{os.environ['ORDERSAGA_FLOWER_PORT']}")
    if settings.is_development:
        # Flower's API refuses to answer without authentication unless told to; this Flower
        # listens on 127.0.0.1 only. A deployment configures Flower's own authentication.
        os.environ.setdefault("FLOWER_UNAUTHENTICATED_API", "true")

    # What the processes print (beat's banner, say) shows when they print it, not when they stop:
    # their output is a pipe to honcho, which Python would buffer.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    bin_dir = Path(sys.executable).parent
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run([bin_dir / "alembic", "upgrade", "head"], check=True)

    # Imported only now: the app reads the environment set above when it loads.
    from app.bootstrap import bootstrap
    from app.flash_gate import token_key
    from app.seed import seed

    runtime = bootstrap(settings)
    seeded = seed(runtime.db.uow)
    # The demo token was just re-issued: forget the old one's cached hash (flash-sale path).
    runtime.redis.delete(token_key(seeded.user_id))
    runtime.db.dispose()

    publish_settings(settings_file, dict(os.environ))
    warning = ""
    if settings.used_development_secrets:
        warning = f"  {DEVELOPMENT_SECRETS_WARNING}\n"
        os.environ[DEVELOPMENT_WARNING_GIVEN] = "1"  # said here once, for every process below
    base = settings.public_url
    print(
        f"""
ordersaga is starting (Ctrl-C stops everything)
{warning}  API            {base}/api/v1/goods
  API docs       {base}/api/docs      (OpenAPI: {base}/api/openapi.json)
  Flower         http://127.0.0.1:{os.environ["ORDERSAGA_FLOWER_PORT"]}/
  Metrics        {base}/metrics
  Redis          {servers.redact(redis.url)}{" (private, under var/redis)" if redis.private else ""}
  Database       {settings.database_url}
  Operator token {settings.admin_token}
  Demo user      {seeded.user_id}
  Demo token     {seeded.user_token}
  Demo coupon    {seeded.coupon_id} (20.00 off orders of 100.00 or more)

  curl -s {base}/api/v1/goods
  curl -s -H 'Authorization: Bearer {seeded.user_token}' {base}/api/v1/me
  .venv/bin/celery -A celery_worker saga list      (takes these settings from var/make-run.json)
""",
        flush=True,
    )
    try:
        return run_until_stopped([str(bin_dir / "honcho"), "start", "-f", str(REPO / "Procfile")])
    finally:
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
