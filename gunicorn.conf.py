"""gunicorn reads this file from the working directory by default.

Checking the settings here, in the master, makes a bad value stop gunicorn with one line instead
of a worker boot loop; `post_fork` gives each worker its own database connections.

`reuse_port`: each worker listens on its own SO_REUSEPORT socket, so the kernel spreads new
connections evenly across workers. With one shared socket, whichever worker wakes first takes a
burst of keep-alive connections, and one worker may hold most of them while the other idles
(figures in docs/benchmarks.md). Since
SO_REUSEPORT would also let a second gunicorn share the port silently, `on_starting` first
checks that the port is free and stops with one line if it is not.

`post_worker_init` freezes the objects a worker was built from, so that the garbage collector's
full collections do not stall every request the worker holds.

The request limits are raised so that the app, not gunicorn, judges what it can: a long URL gets
the app's answer, an over-long `X-Request-ID` is replaced by a new id. They stay bounded, and
what gunicorn still refuses (beyond them, or not valid HTTP) `app.gunicorn_worker.ProblemWorker`
answers as problem+json with an `X-Request-ID`, as every other error.

No control socket: gunicorn's default path is per user, not per instance, so a second gunicorn
on the machine (`make run` beside a test run) would replace it, and the first to stop delete it.
A path under var/ would not do better, as both run from the repository root. Nothing here uses
`gunicornc`.
"""

import errno
import gc
import os
import socket
import sys
from typing import Any

from gunicorn.glogging import Logger

from app.config import exit_with, load_settings_or_exit

_settings = load_settings_or_exit()


def _count(name: str, default: int) -> int:
    """A positive integer from the environment; anything else stops gunicorn with one line."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdecimal()) or int(value) < 1:
        exit_with(f"{name} must be a positive integer, got {value!r}")
    return int(value)


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = _count("GUNICORN_WORKERS", 2)
threads = _count("GUNICORN_THREADS", 4)
worker_class = "app.gunicorn_worker.ProblemWorker"  # gthread, refusals as problem+json
keepalive = 30
accesslog = None
reuse_port = True
control_socket_disable = True
# The longest request line gunicorn takes short of no limit at all (it cuts larger values to this).
limit_request_line = 8190
# One header line, name included: room for big bearer tokens, and for an over-long X-Request-ID.
limit_request_field_size = 16384
# gunicorn's default, stated because with the field size it bounds the header bytes it buffers
# per request: 100 x 16 KiB, about 1.6 MB.
limit_request_fields = 100


class ReusePortLogger(Logger):
    """gunicorn's logger without the arbiter's "Listening at:" line when it has no address.

    The arbiter names the sockets it made; with reuse_port the workers make them, so its line
    would read "Listening at:  (PID)". `on_starting` logs the addresses instead.
    """

    ARBITER_LISTENING = "Listening at: %s (%s)"

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if msg == self.ARBITER_LISTENING and args and not args[0]:
            return
        super().info(msg, *args, **kwargs)


logger_class = ReusePortLogger

if _settings.log_format == "json":
    # gunicorn's own lines (workers booting, exiting) in the same JSON as the app's.
    # Everything through the root logger's one handler, once.
    logconfig_dict = {
        "formatters": {"json": {"()": "app.logs.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True}},
        "root": {"level": "INFO", "handlers": ["console"]},
    }


def on_starting(server):  # type: ignore[no-untyped-def]
    for address in server.cfg.address:
        if not isinstance(address, tuple):
            continue  # a unix socket: SO_REUSEPORT does not apply
        host, port = address[0], address[1]
        probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn's own sockets
        try:
            probe.bind((host, port))  # without SO_REUSEPORT: fails if anyone listens there
        except OSError as error:
            reason = "already in use" if error.errno == errno.EADDRINUSE else error.strerror
            sys.exit(f"gunicorn: cannot listen on {host}:{port}: {reason}")
        finally:
            probe.close()
    # in place of the arbiter's line, which has no address when the workers make the sockets
    server.log.info("Listening at: %s (a SO_REUSEPORT socket per worker)", ", ".join(server.cfg.bind))


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    if "wsgi" in sys.modules:  # only when the app was preloaded in the master
        from app.extension import runtime  # the app is loaded by now; this config loads before it

        runtime(sys.modules["wsgi"].app).after_fork()


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Take what the app was built from out of the garbage collector's full collections.

    A worker holds over a hundred thousand objects once the app is loaded (Flask, SQLAlchemy,
    Celery, kombu, marshmallow...), and each full collection would walk all of them, during which
    every request the worker holds waits. They live as long as the worker does, so freezing them
    frees nothing that could be freed; a full collection then walks only what came later
    (bench/refusals.py prints both costs; figures in docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from app.metrics import mark_process_dead  # the app's metrics load with the app, after this file

    mark_process_dead(worker.pid)
