"""A user's token is checked against the database once per process, then against the hash the
process remembers: the same answers, without a query per request."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

import app.tables  # noqa: F401 - every table, for create_all
from app.db import Database
from app.models.base import Base
from app.services import users


def counting_db(tmp_path: Path) -> tuple[Database, list[str]]:
    db = Database(f"sqlite:///{tmp_path}/users.sqlite3")
    Base.metadata.create_all(db.engine)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return db, statements


def test_the_second_request_of_a_user_needs_no_query(tmp_path: Path) -> None:
    db, statements = counting_db(tmp_path)
    with db.uow() as uow:
        created = users.create_user(uow, "Ann", "ann@example.com")
    authenticator = users.Authenticator(db.uow)
    statements.clear()
    assert authenticator.user_id(created.token, now=0.0) == created.user.id
    asked = len(statements)
    assert asked >= 1
    assert authenticator.user_id(created.token, now=1.0) == created.user.id
    assert len(statements) == asked


def test_wrong_unknown_and_malformed_tokens_are_refused(tmp_path: Path) -> None:
    db, _ = counting_db(tmp_path)
    with db.uow() as uow:
        created = users.create_user(uow, "Bob", "bob@example.com")
    authenticator = users.Authenticator(db.uow)
    assert authenticator.user_id(created.token, now=0.0) == created.user.id
    assert authenticator.user_id(f"{created.user.id}.not-the-secret", now=1.0) is None  # remembered user
    assert authenticator.user_id("usr_unknown.secret", now=1.0) is None
    assert authenticator.user_id("no-dot", now=1.0) is None


def test_a_reissued_token_replaces_the_old_one_within_the_max_age(tmp_path: Path) -> None:
    db, _ = counting_db(tmp_path)
    with db.uow() as uow:
        created = users.create_user(uow, "Cy", "cy@example.com")
    authenticator = users.Authenticator(db.uow, max_age=300.0)
    assert authenticator.user_id(created.token, now=0.0) == created.user.id
    with db.uow() as uow:
        new_token = users.reissue_token(uow, created.user.id)
    assert authenticator.user_id(created.token, now=301.0) is None
    assert authenticator.user_id(new_token, now=302.0) == created.user.id


def test_at_most_size_users_are_remembered(tmp_path: Path) -> None:
    db, statements = counting_db(tmp_path)
    with db.uow() as uow:
        first = users.create_user(uow, "D", "d@example.com")
    with db.uow() as uow:
        second = users.create_user(uow, "E", "e@example.com")
    authenticator = users.Authenticator(db.uow, size=1)
    authenticator.user_id(first.token, now=0.0)
    authenticator.user_id(second.token, now=0.0)  # pushes the first out
    statements.clear()
    assert authenticator.user_id(first.token, now=0.0) == first.user.id
    assert statements, "the first user was forgotten, so it is asked for again"
