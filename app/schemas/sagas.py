"""Sagas on the wire (operators only)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.schemas.common import PageQuerySchema, Timestamp
from app.services.order_saga import STATUSES as SAGA_STATUSES


class SagaStepSchema(ma.Schema):
    name = fields.String()
    kind = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    started_at = Timestamp(allow_none=True)
    finished_at = Timestamp(allow_none=True)
    error = fields.String(allow_none=True)


class SagaSchema(ma.Schema):
    id = fields.String()
    type = fields.String()
    order_id = fields.String(attribute="subject_id")
    status = fields.String()
    created_at = Timestamp()
    updated_at = Timestamp()
    steps = fields.List(fields.Nested(SagaStepSchema))


class SagaPageSchema(ma.Schema):
    items = fields.List(fields.Nested(SagaSchema))
    next_cursor = fields.String(allow_none=True)


class SagaQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(SAGA_STATUSES))
