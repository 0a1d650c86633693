"""Adding messages to the transactional outbox.

Services and the saga engine call `add` inside their unit of work; the message is committed with
the change that caused it, and the relay sends it after commit. The request id of the HTTP
request (or task) that caused it travels with it, so logs tie the whole saga together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.db import UnitOfWork
from app.logs import request_id_var
from app.models import OutboxMessage


def add(
    uow: UnitOfWork,
    task: str,
    kwargs: dict[str, Any],
    queue: str,
    eta: datetime | None = None,
    priority: int | None = None,
) -> OutboxMessage:
    request_id = request_id_var.get()
    message = OutboxMessage(
        task=task,
        queue=queue,
        kwargs=kwargs,
        eta=eta,
        priority=priority,
        request_id=None if request_id == "-" else request_id,
    )
    uow.session.add(message)
    uow.outbox.append(message)
    return message
