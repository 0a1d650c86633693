"""The module the celery command loads: `celery -A celery_worker worker|beat|flower|saga`."""

from celery.signals import worker_init, worker_process_init

from app.bootstrap import bootstrap
from app.cpu_priority import yield_cpu
from app.web import create_app

runtime = bootstrap()
flask_app = create_app(runtime=runtime)
celery_app = flask_app.extensions["celery"]
app = celery_app


@worker_init.connect
def _yield_cpu_to_the_api(**_kwargs: object) -> None:
    """Before the pool forks, so that every pool process inherits it."""
    yield_cpu(runtime.settings.worker_nice)


@worker_process_init.connect
def _dispose_inherited_connections(**_kwargs: object) -> None:
    """No database or Redis connection may be shared across a fork."""
    runtime.after_fork()
