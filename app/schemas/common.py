"""Field types and base schemas that make the contract's JSON rules hold everywhere.

JSON types are strict (`"1"` is not a number, `1.5` and `true` are not integers), unknown fields
are rejected, and every number has the contract's bound, so no value can reach the database
that it cannot store.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.bounds import MAX_CENTS, MAX_COUNT
from app.timeutil import rfc3339


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


# RFC 3339's `date-time`, ASCII digits only: ISO 8601's other shapes (week dates, ordinal dates,
# the basic format without separators) are refused rather than guessed at.
RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime; ValueError if it is not one or cannot be held.

    Fractions beyond microseconds are cut to them. A leap second (`:60`) is read as the last
    microsecond before the next minute, which Python's datetime can hold. A time whose UTC instant
    falls outside years 1..9999 is refused: datetime cannot hold it.
    """
    match = RFC3339.fullmatch(value)
    if match is None:
        raise ValueError("not RFC 3339")
    year, month, day, hour, minute, second, fraction, sign, off_hours, off_minutes = match.groups()
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    if second == "60":
        second, microsecond = "59", 999_999
    offset = timedelta(0)
    if sign is not None:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            raise ValueError("offset out of range")
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes))
        if sign == "-":
            offset = -offset
    local = datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        microsecond,
        tzinfo=timezone(offset),
    )
    try:
        return local.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


class Timestamp(fields.DateTime):
    """RFC 3339 in both directions: input must carry its offset; output is UTC ending in `Z`."""

    default_error_messages = {
        "invalid": "Not an RFC 3339 time (such as 2026-12-02T10:00:00Z) between years 0001 and 9999.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 64:
            raise self.make_error("invalid")
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise self.make_error("invalid") from None


# Control characters (C0, DEL, C1: terminal escape sequences start with one), the line and
# paragraph separators, and the bidirectional embeddings, overrides and isolates, which make text
# show in another order than it is stored: nothing a shop's name or sku needs, and each can garble
# a log, a terminal or a page.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters that show as nothing (Hangul fillers, the blank Braille pattern): with whitespace and
# format characters (zero-width spaces and joiners), a name made of these alone looks empty.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")


class Text(fields.String):
    """A string the database can store and a terminal can show: no control characters (PostgreSQL
    text cannot hold NUL) and no lone surrogates."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(result, str):
            try:
                result.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
                raise ma.ValidationError("Must be valid Unicode text.") from None
            if any(unicodedata.category(c) in _REFUSED_CATEGORIES or c in _BIDI_CONTROLS for c in result):
                raise ma.ValidationError("Must not contain control characters.")
        return result


class Label(Text):
    """A name or a sku: people read it, so it must show something."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(result, str) and all(_shows_nothing(c) for c in result):
            raise ma.ValidationError("Must not be blank.")
        return result


class Email(Text, fields.Email):
    pass


def text(min_length: int, max_length: int, **kwargs: Any) -> Text:
    return Text(validate=validate.Length(min=min_length, max=max_length), **kwargs)


def _shows_nothing(char: str) -> bool:
    return char.isspace() or char in _INVISIBLE or unicodedata.category(char) == "Cf"


def label(max_length: int, **kwargs: Any) -> Label:
    return Label(validate=validate.Length(min=1, max=max_length), **kwargs)


def name_field(**kwargs: Any) -> Label:
    return label(200, **kwargs)


def sku_field(**kwargs: Any) -> Label:
    return label(64, **kwargs)


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
    # Only in the WeChat Pay webhook's refusals, where WeChat Pay reads it: `detail` again.
    message = fields.String(metadata={"description": "WeChat Pay's webhook only: the detail again."})
