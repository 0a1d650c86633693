"""gunicorn reads this file from the working directory by default.

Checking the settings here, in the master, makes a bad value stop gunicorn with one line instead
of a worker boot loop; `post_fork` gives each worker its own database connections.
"""

import os
import sys

from app.config import load_settings_or_exit

load_settings_or_exit()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
keepalive = 30
accesslog = None


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    if "wsgi" in sys.modules:  # only when the app was preloaded in the master
        from app.state import state

        state(sys.modules["wsgi"].app).after_fork()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from app.metrics import mark_process_dead

    mark_process_dead(worker.pid)
