"""Workers, beat and the API carry on by themselves after the database restarts, as the
contract's operations promise. The broker's restart is covered in test_nothing_lost.py."""

from __future__ import annotations

from pathlib import Path

from scripts.servers import start_postgres
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
