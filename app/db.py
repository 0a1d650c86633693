"""Engine, sessions and the unit of work.

Every service function runs in one unit of work: one transaction that is rolled back unless the
service commits. On the embedded SQLite default, connections use WAL journaling, a busy timeout
and `BEGIN IMMEDIATE`, so that the API, workers and beat can write side by side without
"database is locked" surprises half-way through a transaction.
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable, Mapping
from functools import cached_property
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRESQL_CONNECT_TIMEOUT_SECONDS = 10


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for `url`, with the SQLite settings the embedded default needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    connect_args = kwargs.pop("connect_args", {})
    # UTC sessions: a server in another time zone would read 9999-12-31T23:59:59Z back as a year
    # psycopg cannot hold. A connect that gives up: a database that stopped answering must not
    # hang a process (beat asks it every second) for the kernel's TCP timeout.
    connect_args.setdefault("options", "-c timezone=UTC")
    connect_args.setdefault("connect_timeout", POSTGRESQL_CONNECT_TIMEOUT_SECONDS)
    # TCP keepalives on idle pooled connections: a peer gone without a word (a failover, a
    # firewall that forgot the connection) turns into a socket error within about a minute,
    # which the checkout below sees, and a NAT keeps the connection's mapping meanwhile.
    connect_args.setdefault("keepalives_idle", 30)
    connect_args.setdefault("keepalives_interval", 10)
    connect_args.setdefault("keepalives_count", 3)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _mark_new)
    event.listen(engine, "checkout", _refuse_if_closed_by_server)
    return engine


_NEW = "ordersaga.new"  # in a pool record's info: connected, not yet checked out


def _mark_new(_dbapi_connection: Any, record: Any) -> None:
    record.info[_NEW] = True


def _refuse_if_closed_by_server(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Take no pooled connection that the server has closed (a restart, a terminated backend).

    An idle connection has nothing to read; one the server closed has its farewell or the end
    of the stream waiting in the socket, and one whose peer vanished has the keepalives' error.
    Looking costs no round trip, where a ping before every transaction costs one. Raising here
    makes the pool connect anew. A connection just made is not looked at: the pool would not
    replace it again, and a failure there is the new connection's own, raised on first use.
    Only a notification (LISTEN, which nothing here uses) would drop a live connection.
    """
    if record.info.pop(_NEW, False):
        return
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        closed = bool(poller.poll(0))
    except Exception as error:  # no socket left: as closed as can be
        raise DisconnectionError(f"this pooled connection has no socket: {error}") from error
    if closed:
        raise DisconnectionError("the database closed this pooled connection")


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    database = parsed.database
    if database and database != ":memory:":
        directory = os.path.dirname(database)
        if directory:
            os.makedirs(directory, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if database and database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


AfterCommit = Callable[[list[Any]], object]  # gets the committed OutboxMessage rows


class Database:
    """The engine and session factory of one process.

    `after_commit` is the outbox relay, set by the process that can reach the broker: it gets the
    outbox messages a unit of work committed, and sends them.
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.session_factory: Callable[[], Session] = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.after_commit: AfterCommit | None = None
        self._compiled: dict[Select[Any], str] = {}  # `fetch`'s statements, compiled

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @cached_property
    def bookkeeping(self) -> Engine:
        """For writes that a crash may lose at no cost but a repeat: the outbox's "sent" marks.

        On PostgreSQL its connections autocommit and do not wait for the WAL flush, so a mark is
        one statement, not BEGIN, SET, UPDATE and COMMIT. It runs after every order's and every
        saga step's commit. On SQLite it is the one engine (which has no such setting).
        """
        if self.dialect != "postgresql":
            return self.engine
        return make_engine(
            self.url,
            isolation_level="AUTOCOMMIT",
            connect_args={"options": "-c timezone=UTC -c synchronous_commit=off"},
            pool_size=4,
            max_overflow=4,
        )

    @cached_property
    def reads(self) -> Engine:
        """For reads that write nothing, the API's order reads above all.

        On PostgreSQL its connections autocommit, so a read is its statement alone: no BEGIN
        before it, no ROLLBACK after. They are a pool of their own, autocommit from the start,
        rather than connections of the engine's pool switched to autocommit at each checkout and
        back at each checkin, which every read paid for (docs/benchmarks.md). On SQLite it is
        the one engine.
        """
        if self.dialect != "postgresql":
            return self.engine
        return make_engine(self.url, isolation_level="AUTOCOMMIT", pool_size=4, max_overflow=8)

    def fetch(self, statement: Select[Any], params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """A read's rows as plain tuples, on a `reads` connection.

        On PostgreSQL the statement, compiled once, runs on the driver's own cursor: for a read
        of one order, SQLAlchemy's handling of the result (the cursor's description, a result
        object, its rows) cost more than the query. So only for statements whose columns need
        none of SQLAlchemy's conversions there: strings, numbers, and timestamps, which the
        driver hands back aware and in UTC (the session's zone), as `UTCDateTime` reads them. A
        driver error is raised as SQLAlchemy would raise it, and a connection it broke is
        dropped from the pool.
        """
        if self.dialect != "postgresql":
            with self.reads.connect() as connection:
                return [tuple(row) for row in connection.execute(statement, params)]
        sql = self._compiled.get(statement)
        if sql is None:
            sql = self._compiled[statement] = str(statement.compile(dialect=self.engine.dialect))
        driver_error = self.engine.dialect.loaded_dbapi.Error
        pooled = self.reads.raw_connection()
        driver = pooled.driver_connection
        assert driver is not None  # a connection checked out of the pool is open
        try:
            with driver.cursor() as cursor:
                cursor.execute(sql, params)
                rows: list[tuple[Any, ...]] = cursor.fetchall()
                return rows
        except driver_error as error:
            if driver.closed:
                pooled.invalidate(error)
            raise DBAPIError.instance(
                sql, params, error, driver_error, connection_invalidated=driver.closed
            ) from error
        finally:
            pooled.close()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.after_commit)

    def dispose(self) -> None:
        """Close every pooled connection of every engine (at the end of a process or a test)."""
        for engine in self._engines():
            engine.dispose()

    def dispose_after_fork(self) -> None:
        """Drop pooled connections inherited from the parent process without closing them."""
        for engine in self._engines():
            engine.dispose(close=False)

    def _engines(self) -> list[Engine]:
        """The engines this process has made (`reads` and `bookkeeping` only once used)."""
        made = [self.__dict__[name] for name in ("reads", "bookkeeping") if name in self.__dict__]
        return [self.engine, *(engine for engine in made if engine is not self.engine)]


class UnitOfWork:
    """One transaction: `with db.uow() as uow: ...; uow.commit()`. Rolls back unless committed."""

    def __init__(
        self, session_factory: Callable[[], Session], after_commit: AfterCommit | None = None
    ) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None
        self._after_commit = after_commit
        self.outbox: list[Any] = []  # OutboxMessage rows added in this transaction

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its `with` block")
        return self._session

    @property
    def connection(self) -> Connection:
        """This transaction's connection, for plain INSERTs and UPDATEs on hot paths: they skip
        the session's own work per statement (autoflush, ORM compilation), which costs more
        than the statement itself. Nothing the session holds is refreshed by them."""
        return self.session.connection()

    def __enter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed, and, unlike rollback(), leaves the
        # loaded objects readable (detached) for the view that returns them.
        self.session.close()
        self._session = None
        self.outbox = []

    def commit(self) -> None:
        """Commit; then hand the committed outbox messages to the relay.

        A relay failure (broker down) is logged and otherwise ignored: the messages are safely in
        the database, and the sweep sends them once the broker is back.
        """
        committed = self.outbox
        self.session.commit()
        self.outbox = []
        if committed and self._after_commit is not None:
            try:
                self._after_commit(committed)
            except Exception:  # committed already: a relay fault must not fail the caller; the sweep resends
                ids = [message.id for message in committed]
                log.warning("outbox relay failed; the sweep will send messages %s", ids, exc_info=True)

    def rollback(self) -> None:
        self.session.rollback()
        self.outbox = []
