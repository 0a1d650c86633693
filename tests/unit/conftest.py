"""Unit fixtures: the app on a throwaway SQLite file and fakeredis; no server needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extension import runtime
from app.tables import Base
from tests.support.env import NO_BROKER, settings_for


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    flask_app = create_app(settings_for(f"sqlite:///{tmp_path}/unit.sqlite3", NO_BROKER))
    app_state = runtime(flask_app)
    Base.metadata.create_all(app_state.db.engine)
    app_state._redis = fakeredis.FakeRedis(decode_responses=True)
    yield flask_app
    app_state.db.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
