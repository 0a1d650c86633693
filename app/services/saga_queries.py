"""Reading sagas: the one query behind the operator's API, HTML console and CLI.

Plain SQLAlchemy on the caller's unit of work, so that a view, a template and a command line
list the same sagas the same way. Writes (retrying a saga) stay with the saga engine.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from app.db import UnitOfWork
from app.services.pagination import Page, paginate
from sagas import rows
from sagas.models import Saga


def _sagas(status: str | None) -> Select[Saga]:
    statement = select(Saga)
    if status is not None:
        statement = statement.where(Saga.status == status)
    return statement


def list_sagas(
    uow: UnitOfWork, status: str | None = None, *, limit: int, cursor: str | None = None
) -> Page[Saga]:
    """One page of sagas in id (creation) order, after `cursor`: the API's keyset pagination.

    A cursor that this API did not hand out raises InvalidInput (422 `validation`, `cursor`).
    """
    return paginate(uow.session, _sagas(status), Saga.id, limit, cursor)


def recently_moved(uow: UnitOfWork, status: str | None = None, *, limit: int) -> list[Saga]:
    """The `limit` sagas that moved last (by `updated_at`), the most recent first."""
    return list(uow.session.scalars(_sagas(status).order_by(Saga.updated_at.desc()).limit(limit)))


def get_saga(uow: UnitOfWork, saga_id: str) -> Saga:
    """One saga with its steps; NotFound for an unknown id or anything that is not an id."""
    return rows.get(uow, saga_id)
