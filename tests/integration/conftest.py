"""Integration fixtures: the app on a real PostgreSQL database and a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.support.databases import truncate_all
from tests.support.env import settings_for
from tests.support.world import World, make_world


@pytest.fixture
def app(pg_url: str, redis_url: str) -> Iterator[Flask]:
    flask_app = create_app(settings_for(pg_url, redis_url))
    # In-process API tests run no worker: outbox messages stay in the database rather than
    # piling up in the shared test broker. The relay is tested with real workers elsewhere.
    flask_app.extensions["ordersaga"].db.after_commit = None
    yield flask_app
    flask_app.extensions["ordersaga"].db.dispose()
    truncate_all(pg_url)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def world(app: Flask) -> World:
    """The order saga driven step by step in-process, with a fake provider."""
    return make_world(app)
