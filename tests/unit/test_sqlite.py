"""The embedded SQLite default lets several writers work side by side without losing updates."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from app.db import Database
from app.models.base import Base
from app.services import goods


def test_wal_and_busy_timeout_are_on(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.sqlite3")
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_concurrent_restocks_are_all_counted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/b.sqlite3"
    setup = Database(url)
    Base.metadata.create_all(setup.engine)
    with setup.uow() as uow:
        goods_id = goods.create_goods(uow, "SKU", "Tea", 100, 0).id
    errors: list[BaseException] = []

    def restock_many() -> None:
        db = Database(url)  # its own engine, as a separate process would have
        try:
            for _ in range(50):
                with db.uow() as uow:
                    goods.restock(uow, goods_id, 1)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=restock_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with setup.uow() as uow:
        assert goods.get_goods(uow, goods_id).stock_available == 200
