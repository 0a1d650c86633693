"""Workers, beat and the API carry on by themselves after the database restarts, as the
contract's operations promise. The broker's restart is covered in test_nothing_lost.py."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from app.db import Database
from scripts.servers import start_postgres
from tests.support.processes import wait_until
from tests.support.stack import running_stack


def test_everything_carries_on_after_a_database_restart(tmp_path: Path) -> None:
    with start_postgres(tmp_path / "pg") as postgres, running_stack(postgres.url) as stack:
        goods, buyer = stack.goods(stock=5), stack.user()
        first = stack.place(buyer, [(goods["id"], 1)]).json()["id"]
        assert stack.wait_order(first)["status"] == "AWAITING_PAYMENT"

        for _ in range(4):  # pooled connections in both of gunicorn's processes
            stack.order(first)
        postgres.restart()  # every pooled connection of every process is now dead

        # The pools replace the connections the restart closed before using them: no request fails.
        for _ in range(4):
            assert stack.order(first)["id"] == first

        second = stack.place(buyer, [(goods["id"], 1)])
        assert second.status_code == 202, second.text
        assert stack.wait_order(second.json()["id"], timeout=90)["status"] == "AWAITING_PAYMENT"
        assert stack.stock(goods["id"])["stock_reserved"] == 2
        assert all(process.running for process in stack.processes.values())


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(pg_url: str) -> None:
    """No ping before each transaction: the pool sees in the socket that the server has closed
    the connection (here its backend is terminated, as a restart does to every one) and
    connects anew, so the next statement runs rather than failing. For each pool: the engine's,
    the reads' and the outbox marks'."""
    db = Database(pg_url)
    killer = create_engine(pg_url, isolation_level="AUTOCOMMIT")  # each poll sees a new snapshot
    backend_pid = text("SELECT pg_backend_pid()")
    gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
    try:
        for engine in (db.engine, db.reads, db.bookkeeping):
            with engine.connect() as connection:
                first = connection.execute(backend_pid).scalar_one()
            with killer.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
                wait_until(lambda pid=first: other.execute(gone, {"pid": pid}).scalar_one(), timeout=10)
            with engine.connect() as connection:
                assert connection.execute(backend_pid).scalar_one() != first
    finally:
        killer.dispose()
        db.dispose()
