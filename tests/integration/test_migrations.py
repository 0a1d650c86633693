"""The migrations and the models agree, on PostgreSQL and on the embedded SQLite default."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import make_engine
from app.tables import Base
from scripts.servers import Server
from tests.support.databases import alembic_config, create_database, drop_database


def _assert_round_trip(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
            )
            assert compare_metadata(context, Base.metadata) == []
            assert set(Base.metadata.tables) <= set(inspect(connection).get_table_names())
        command.downgrade(config, "base")
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == ["alembic_version"]
    finally:
        engine.dispose()


def test_migrations_match_models_on_postgresql(pg_server: Server) -> None:
    url = create_database(pg_server.url, prefix="ordersaga_migrations")
    try:
        _assert_round_trip(url)
    finally:
        drop_database(pg_server.url, url)


def test_migrations_match_models_on_sqlite(tmp_path: Path) -> None:
    _assert_round_trip(f"sqlite:///{tmp_path}/migrations.sqlite3")
