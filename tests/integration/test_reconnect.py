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

        # A read on a dropped connection is run again on a new one: no request fails.
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
    connects anew, so the next statement runs rather than failing."""
    db = Database(pg_url)
    backend_pid = "SELECT pg_backend_pid()"
    try:
        with db.engine.connect() as connection:
            first = connection.execute(text(backend_pid)).scalar_one()
        with create_engine(pg_url).connect() as other:  # a connection of its own
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
            wait_until(lambda: other.execute(gone, {"pid": first}).scalar_one(), timeout=10)
        for engine in (db.engine, db.reads):
            with engine.connect() as connection:
                assert connection.execute(text(backend_pid)).scalar_one() != first
    finally:
        db.dispose()
