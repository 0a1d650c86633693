"""Cursor pagination over time-ordered ids.

The cursor is the last id of a page, base64url-encoded so that clients treat it as opaque.
Keyset pagination stays correct while rows are being added, unlike offsets.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.errors import InvalidInput
from app.ids import looks_like_id

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInput("cursor", "Not a cursor returned by this API.") from None
    if not looks_like_id(value):
        raise InvalidInput("cursor", "Not a cursor returned by this API.")
    return value


def paginate(
    session: Session,
    statement: Select[Any],
    id_column: InstrumentedAttribute[str],
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """Run `statement` ordered by id, one page of `limit` rows after `cursor`."""
    if cursor:
        statement = statement.where(id_column > decode_cursor(cursor))
    rows = list(session.scalars(statement.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id) if more and rows else None)
