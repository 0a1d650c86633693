"""Adding messages to the transactional outbox.

Services and the saga engine call `add` inside their unit of work; the message is committed with
the change that caused it, and the relay sends it after commit. The request id of the HTTP
request (or task) that caused it travels with it, so logs tie the whole saga together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert

from app.db import UnitOfWork
from app.logs import request_id_var
from app.models.outbox import OutboxMessage

OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]


def add(
    uow: UnitOfWork,
    task: str,
    kwargs: dict[str, Any],
    queue: str,
    *,
    eta: datetime | None = None,
    priority: int | None = None,
) -> OutboxMessage:
    """Insert the message now; the relay sends it after commit (with `eta`, as an ETA task)."""
    return _insert(uow, {"task": task, "kwargs": kwargs, "queue": queue, "eta": eta, "priority": priority})


def hold(
    uow: UnitOfWork,
    task: str,
    kwargs: dict[str, Any],
    queue: str,
    *,
    due: datetime,
    priority: int | None = None,
) -> OutboxMessage:
    """Insert a held message: not sent after commit, but by the releaser once `due`."""
    values = {"task": task, "kwargs": kwargs, "queue": queue, "eta": due, "priority": priority}
    return _insert(uow, values, held=True)


def _insert(uow: UnitOfWork, values: dict[str, Any], held: bool = False) -> OutboxMessage:
    """A plain INSERT: the message is never changed in this transaction, so it need not wait
    for (and weigh on) the ORM's flush. The returned copy is what the relay sends after commit."""
    request_id = request_id_var.get()
    values = {**values, "request_id": None if request_id == "-" else request_id, "held": held}
    inserted = uow.connection.execute(insert(OUTBOX), values)
    message = OutboxMessage(id=inserted.inserted_primary_key[0], **values)  # type: ignore[index]
    if not held:
        uow.outbox.append(message)
    return message
