"""Operators: sagas, and resuming the FAILED ones."""

from __future__ import annotations

from typing import Any

from app.api.auth import operator_required
from app.api.blueprint import Blueprint
from app.extension import runtime
from app.schemas.sagas import SagaPageSchema, SagaQuerySchema, SagaSchema
from app.services import saga_queries

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Operators: sagas")


@blp.get("/sagas")
@operator_required
@blp.arguments(SagaQuerySchema, location="query")
@blp.response(200, SagaPageSchema)
def list_sagas(query: dict[str, Any]) -> Any:
    with runtime().db.uow() as uow:
        return saga_queries.list_sagas(uow, query["status"], limit=query["limit"], cursor=query["cursor"])


@blp.get("/sagas/<saga_id>")
@operator_required
@blp.response(200, SagaSchema)
def get_saga(saga_id: str) -> Any:
    with runtime().db.uow() as uow:
        return saga_queries.get_saga(uow, saga_id)


@blp.post("/sagas/<saga_id>/retry")
@operator_required
@blp.response(202, SagaSchema)
def retry_saga(saga_id: str) -> Any:
    engine = runtime().engine
    engine.retry(saga_id)
    with runtime().db.uow() as uow:
        return saga_queries.get_saga(uow, saga_id)
