"""Reading sagas: the one query behind the operator's API, HTML console and CLI.

Plain SQLAlchemy on the caller's unit of work, so that a view, a template and a command line
list the same sagas the same way. Writes (retrying a saga) stay with the saga engine.
"""

from __future__ import annotations

from sqlalchemy import Select, case, select

from app.db import UnitOfWork
from app.models.orders import Order
from app.services.pagination import Page, paginate
from sagas import rows
from sagas.models import FAILED, Saga


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


def for_console(uow: UnitOfWork, status: str | None = None, *, limit: int) -> list[Saga]:
    """The `limit` sagas an operator looks at first: the FAILED ones, which wait for an
    operator, then the others that moved last."""
    failed_first = case((Saga.status == FAILED, 0), else_=1)
    return list(
        uow.session.scalars(_sagas(status).order_by(failed_first, Saga.updated_at.desc()).limit(limit))
    )


def last_error(saga: Saga) -> str | None:
    """The error of the step that failed last (a FAILED saga's is why it stopped)."""
    failed = [step for step in saga.steps if step.error]
    return max(failed, key=lambda step: step.id).error if failed else None


def order_of(uow: UnitOfWork, saga: Saga) -> Order | None:
    """The order the saga runs for, with its payment."""
    return uow.session.get(Order, saga.subject_id)


def get_saga(uow: UnitOfWork, saga_id: str) -> Saga:
    """One saga with its steps; NotFound for an unknown id or anything that is not an id."""
    return rows.get(uow, saga_id)
