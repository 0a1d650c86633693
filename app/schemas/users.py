"""Users on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from app.schemas.common import StrictSchema, Timestamp, email_field, name_field


class UserCreateSchema(StrictSchema):
    name = name_field(required=True)
    email = email_field(required=True)


class MeSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    points = fields.Integer()


class UserSchema(MeSchema):
    created_at = Timestamp()


class NewUserSchema(UserSchema):
    token = fields.String(metadata={"description": "Returned once; only its hash is stored."})
