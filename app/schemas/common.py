"""Field types and base schemas that make the contract's JSON rules hold everywhere.

JSON types are strict (`"1"` is not a number, `1.5` and `true` are not integers), unknown fields
are rejected, and every number has the contract's bound, so no value can reach the database
that it cannot store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.timeutil import as_utc, rfc3339

MAX_CENTS = 10**12
MAX_COUNT = 10**9


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class StrictInteger(fields.Integer):
    """An integer that must be a JSON integer: not a string, a float or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def cents(minimum: int = 0, **kwargs: Any) -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=minimum, max=MAX_CENTS), **kwargs)


def count(minimum: int = 0, maximum: int = MAX_COUNT, **kwargs: Any) -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=minimum, max=maximum), **kwargs)


class Timestamp(fields.AwareDateTime):
    """RFC 3339: input must carry its offset; output is always UTC ending in `Z`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 64:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        return as_utc(super()._deserialize(value, attr, data, **kwargs))


class Text(fields.String):
    """A string the database can store: PostgreSQL text cannot hold NUL characters."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(result, str):
            if "\x00" in result:
                raise ma.ValidationError("Must not contain NUL characters.")
            try:
                result.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
                raise ma.ValidationError("Must be valid Unicode text.") from None
        return result


class Email(Text, fields.Email):
    pass


def text(min_length: int, max_length: int, **kwargs: Any) -> Text:
    return Text(validate=validate.Length(min=min_length, max=max_length), **kwargs)


def name_field(**kwargs: Any) -> Text:
    return text(1, 200, **kwargs)


def email_field(**kwargs: Any) -> Email:
    return Email(validate=validate.Length(max=254), **kwargs)


class PageQuerySchema(ma.Schema):
    """`?limit=` 1..100 (never clamped) and an opaque `?cursor=`; other query args are ignored."""

    class Meta:
        unknown = ma.EXCLUDE

    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class ProblemSchema(ma.Schema):
    """application/problem+json (RFC 9457), with the contract's stable `code`."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
