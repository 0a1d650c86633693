"""Adding messages to the transactional outbox.

Services and the saga engine call `add` inside their unit of work; the message is committed with
the change that caused it, and the relay sends it after commit. The request id of the HTTP
request (or task) that caused it travels with it, so logs tie the whole saga together.

A saga's message is committed as sent already (`add_presumed_sent`): the relay sends it right after
the commit, and records it as unsent again only if the broker refuses it. So it costs no second
transaction to mark. One lost between the commit and the send (the process died) leaves its saga
unmoved, and the sweep sends again the message of a saga that has not moved
(`Recovery.redrive_stale`). Any other message is marked sent once the broker has it, and the sweep
sends again those still unmarked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert

from app import tracing
from app.db import UnitOfWork
from app.logs import request_id_var
from app.models.outbox import OutboxMessage
from app.timeutil import utcnow

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
    values = {
        "task": task,
        "kwargs": kwargs,
        "queue": queue,
        "eta": eta,
        "priority": priority,
        "sent_at": None,
    }
    return _insert(uow, values)


def add_presumed_sent(
    uow: UnitOfWork, task: str, kwargs: dict[str, Any], queue: str, *, priority: int | None = None
) -> OutboxMessage:
    """Insert a message committed as sent already: only one whose loss something else repairs,
    as the sweep's re-drive does for a saga's."""
    values = {"task": task, "kwargs": kwargs, "queue": queue, "eta": None, "priority": priority}
    return _insert(uow, {**values, "sent_at": utcnow()})


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
    values = {
        "task": task,
        "kwargs": kwargs,
        "queue": queue,
        "eta": due,
        "priority": priority,
        "sent_at": None,
    }
    return _insert(uow, values, held=True)


def _insert(uow: UnitOfWork, values: dict[str, Any], held: bool = False) -> OutboxMessage:
    """A plain INSERT: the message is never changed in this transaction, so it need not wait
    for (and weigh on) the ORM's flush. The returned copy is what the relay sends after commit."""
    request_id = request_id_var.get()
    values = {
        **values,
        "request_id": None if request_id == "-" else request_id,
        "trace_context": tracing.current_context(),
        "held": held,
    }
    inserted = uow.connection.execute(insert(OUTBOX), values)
    message = OutboxMessage(id=inserted.inserted_primary_key[0], **values)  # type: ignore[index]
    if not held:
        uow.outbox.append(message)
    return message
