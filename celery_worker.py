"""The module the celery command loads: `celery -A celery_worker worker|beat|flower|saga`."""

import os
import sys
from pathlib import Path

from celery.signals import worker_init, worker_process_init

from app import tracing
from app.bootstrap import bootstrap
from app.config import exit_with
from app.cpu_priority import yield_cpu
from app.flower_options import flower_environment
from app.setting_values import ConfigError
from app.web import create_app

runtime = bootstrap()
if "flower" in sys.argv[1:]:  # the celery command loads this module before it runs Flower
    try:
        os.environ.update(flower_environment(runtime.settings, os.environ))
        Path(os.environ["FLOWER_DB"]).parent.mkdir(parents=True, exist_ok=True)
    except ConfigError as error:
        exit_with(str(error))
flask_app = create_app(runtime=runtime)
celery_app = flask_app.extensions["celery"]
app = celery_app


@worker_init.connect
def _yield_cpu_to_the_api(**_kwargs: object) -> None:
    """Before the pool forks, so that every pool process inherits it."""
    yield_cpu(runtime.settings.worker_nice)


@worker_process_init.connect
def _dispose_inherited_connections(**_kwargs: object) -> None:
    """No database or Redis connection may be shared across a fork; and each pool process
    exports its own spans (only when OTEL_EXPORTER_OTLP_ENDPOINT is set)."""
    runtime.after_fork()
    tracing.start("ordersaga-worker")
