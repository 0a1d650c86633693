"""The Celery app, bound to the Flask app as in Flask's own Celery recipe.

Settings changed from Celery's defaults, and why:
- acks_late + reject_on_worker_lost: a worker killed mid-task leaves the message to be redelivered;
  every task is idempotent, so running it again is safe.
- prefetch multiplier 1: a saga step waits in the broker, not in a busy worker's buffer.
- JSON only; events on, so Flower sees every task.
- The Redis visibility timeout is longer than the longest ETA (the payment timeout), or Redis
  would deliver an ETA task a second time before it is due.
- On RabbitMQ: durable quorum queues (app/broker.py) and publisher confirms, so that a message
  the broker took is one it keeps; delayed messages wait in the broker (native delayed delivery).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task, signals
from flask import Flask

from app import metrics
from app.bootstrap import Runtime
from app.broker import QUEUES, is_redis, task_queues
from app.config import Settings
from app.logs import clear_context, install_filter, request_id_var, set_context
from app.relay import OutboxRelay
from tasks import flash as flash_tasks
from tasks import members, ops, payments, sweeps
from tasks import saga as saga_tasks
from tasks import sandbox as sandbox_tasks
from tasks.consumer import patch_redis_channel

TASK_MODULES = (ops, sweeps, members, payments, sandbox_tasks, flash_tasks)


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": broker_transport_options(settings),
        "broker_heartbeat": 30,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": True,
        # No "task-sent" event: it was a second publish for every message, a third of what a
        # send costs the API and the workers. Flower shows a task once a worker has it; what
        # waits in a queue shows in ordersaga_queue_depth.
        "task_send_sent_event": False,
        "task_queues": task_queues(settings.broker_url),
        "task_default_queue": "orders",
        "task_routes": {f"{name}.*": {"queue": name} for name in QUEUES},
        "beat_schedule": beat_schedule(settings),
        "worker_hijack_root_logger": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "timezone": "UTC",
        "enable_utc": True,
    }


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    if not is_redis(settings.broker_url):
        return {"confirm_publish": True}
    timeout = settings.payment_timeout_seconds
    return {
        "visibility_timeout": max(timeout * 2, timeout + 3600),
        "health_check_interval": 10,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "sweep": {
            "task": sweeps.SWEEP_TASK,
            "schedule": float(settings.sweep_interval_seconds),
            "options": {"queue": "orders", "expires": float(settings.sweep_interval_seconds)},
        },
        # A flash sale's winners' sagas, sent when their turn comes;
        # sent only while one waits, so an idle beat sends nothing.
        "flash-release": {
            "task": flash_tasks.RELEASE_TASK,
            "schedule": flash_tasks.WhileHeld(flash_tasks.RELEASE_EVERY_SECONDS),
            "options": {"queue": "orders", "expires": flash_tasks.RELEASE_EVERY_SECONDS},
        },
        # The sandbox provider's own backstop for webhooks it could not hand to the broker.
        "sandbox-redeliver": {
            "task": "sandbox.redeliver_pending",
            "schedule": sandbox_tasks.WhileOverdue(30.0),
            "options": {"queue": "sandbox", "expires": 30.0},
        },
    }


class AppTasks(Celery):  # type: ignore[misc]
    """Tasks belong to the app that registers them. Celery would otherwise share each one with
    every app made later in the process, where the first registration of a name wins: a second
    Flask app (a test, a tool) would run its tasks on the first one's runtime."""

    def task(self, *args: Any, **opts: Any) -> Any:
        opts.setdefault("shared", False)
        return super().task(*args, **opts)


def celery_init_app(app: Flask, runtime: Runtime) -> Celery:
    """The Celery app for this Flask app: every task runs inside the Flask app context (Flask's
    own recipe), and is bound to `runtime`."""
    patch_redis_channel()

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = AppTasks(app.name, task_cls=FlaskTask)
    config = celery_config(runtime.settings)
    # Saga step tasks come from the saga definitions; their routes take precedence.
    config["task_routes"] = {**saga_tasks.register(celery_app, runtime), **config["task_routes"]}
    for module in TASK_MODULES:
        module.register(celery_app, runtime)
    celery_app.config_from_object(config)
    celery_app.set_default()
    runtime.relay = OutboxRelay(runtime.db, celery_app)
    runtime.db.after_commit = runtime.relay.send
    app.extensions["celery"] = celery_app
    celery_app.flask_app = app  # type: ignore[attr-defined]
    celery_app.ordersaga_runtime = runtime  # type: ignore[attr-defined]  # for beat's schedules and the CLI
    return celery_app


@signals.task_prerun.connect
def _take_request_id(task: Task | None = None, kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    """The request id of the HTTP request that caused this task (via the outbox), or the task
    id; and, for the logs, what the task is about (a saga step's task is named after its step)."""
    if task is None:
        return
    request_id = getattr(task.request, "ordersaga_request_id", None) or task.request.id
    request_id_var.set(str(request_id))
    about = kwargs or {}
    saga_id = about.get("saga_id")
    set_context(
        task_id=str(task.request.id),
        task=task.name,
        order_id=about.get("order_id"),
        saga_id=saga_id,
        step=task.name.rsplit(".", 1)[-1] if saga_id else None,
    )
    metrics.sql_source_var.set(task.name)  # its SQL is counted by the task's name


@signals.task_postrun.connect
def _drop_request_id(**_kwargs: Any) -> None:
    request_id_var.set("-")
    clear_context()
    metrics.sql_source_var.set(None)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_request_id(logger: logging.Logger, **_kwargs: Any) -> None:
    for handler in logger.handlers:
        install_filter(
            handler,
            "[%(asctime)s: %(levelname)s/%(processName)s] [request_id=%(request_id)s] %(name)s: %(message)s",
        )
