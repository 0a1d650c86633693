"""Loading a row by id, where anything that is not one of our ids is simply not found.

Checking the shape first keeps odd input (NUL bytes, huge strings) away from the database.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from app.ids import looks_like_id

M = TypeVar("M")


def find(session: Session, model: type[M], row_id: str, for_update: bool = False) -> M | None:
    if not looks_like_id(row_id):
        return None
    return session.get(model, row_id, with_for_update=for_update or None)
