"""Operators: sagas, and resuming the FAILED ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.api.auth import operator_required
from app.api.blueprint import Blueprint
from app.extension import runtime
from app.schemas.sagas import SagaPageSchema, SagaQuerySchema, SagaSchema
from app.services.pagination import paginate
from sagas.models import Saga

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Operators: sagas")


@blp.get("/sagas")
@operator_required
@blp.arguments(SagaQuerySchema, location="query")
@blp.response(200, SagaPageSchema)
def list_sagas(query: dict[str, Any]) -> Any:
    statement = select(Saga)
    if query["status"] is not None:
        statement = statement.where(Saga.status == query["status"])
    with runtime().db.uow() as uow:
        return paginate(uow.session, statement, Saga.id, query["limit"], query["cursor"])


@blp.get("/sagas/<saga_id>")
@operator_required
@blp.response(200, SagaSchema)
def get_saga(saga_id: str) -> Any:
    with runtime().db.uow() as uow:
        return runtime().engine.get(uow, saga_id)


@blp.post("/sagas/<saga_id>/retry")
@operator_required
@blp.response(202, SagaSchema)
def retry_saga(saga_id: str) -> Any:
    engine = runtime().engine
    engine.retry(saga_id)
    with runtime().db.uow() as uow:
        return engine.get(uow, saga_id)
