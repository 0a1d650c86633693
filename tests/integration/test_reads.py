"""Reads on the driver's own cursor (`Database.fetch`) give what SQLAlchemy's execution gives,
and fail as it fails."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.extension import runtime
from app.services.order_reads import ONE_ORDER, ORDER_COLUMNS
from tests.support.api import bearer, create_goods, create_user


def test_an_order_read_on_the_driver_is_the_read_sqlalchemy_makes(app: Flask, client: FlaskClient) -> None:
    user, goods = create_user(client), create_goods(client)
    placed = client.post(
        "/api/v1/orders",
        json={"items": [{"goods_id": goods["id"], "quantity": 2}]},
        headers=bearer(user["token"]),
    )
    assert placed.status_code == 202, placed.get_json()
    db, params = runtime(app).db, {"order_id": placed.get_json()["id"]}

    with db.reads.connect() as connection:
        expected = [tuple(row) for row in connection.execute(ONE_ORDER, params)]
    rows = db.fetch(ONE_ORDER, params)

    assert rows == expected and len(rows) == 1
    created_at = rows[0][ORDER_COLUMNS.index("created_at")]
    assert created_at.utcoffset() == timedelta(0)


def test_a_read_whose_connection_breaks_raises_as_sqlalchemy_would_and_the_next_connects_anew(
    app: Flask,
) -> None:
    db = runtime(app).db
    before = db.fetch(select(func.pg_backend_pid()), {})[0][0]

    with pytest.raises(OperationalError):
        db.fetch(select(func.pg_terminate_backend(func.pg_backend_pid())), {})

    assert db.fetch(select(func.pg_backend_pid()), {})[0][0] != before
