"""The module the celery command loads: `celery -A celery_worker worker|beat|flower|saga`."""

from celery.signals import worker_process_init

from app import create_app
from app.state import state

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
app = celery_app


@worker_process_init.connect
def _dispose_inherited_connections(**_kwargs: object) -> None:
    """No database or Redis connection may be shared across a fork."""
    state(flask_app).after_fork()
