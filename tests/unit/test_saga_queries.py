"""The read side of sagas that the admin API, the operator console and the CLI share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from app.errors import InvalidInput, NotFound
from app.extension import runtime
from app.ids import new_id
from app.services import saga_queries
from sagas.models import COMPLETED, FAILED, Saga, SagaStep

BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def saga_ids(app: Flask) -> list[str]:
    """Six sagas in creation (id) order; they last moved in another order, every other one FAILED."""
    moved = [3, 0, 5, 1, 4, 2]
    ids = sorted(new_id("sga") for _ in moved)
    with runtime(app).db.uow() as uow:
        for position, (saga_id, minutes) in enumerate(zip(ids, moved, strict=True)):
            saga = Saga(
                id=saga_id,
                type="order",
                subject_id=new_id("ord"),
                status=FAILED if position % 2 else COMPLETED,
                created_at=BASE,
                updated_at=BASE + timedelta(minutes=minutes),
            )
            saga.steps.append(SagaStep(position=0, name="reserve_stock", kind="action"))
            uow.session.add(saga)
        uow.session.commit()
    return ids


def test_pages_follow_ids_after_the_cursor(app: Flask, saga_ids: list[str]) -> None:
    seen: list[str] = []
    cursor = None
    with runtime(app).db.uow() as uow:
        while True:
            page = saga_queries.list_sagas(uow, limit=4, cursor=cursor)
            seen += [saga.id for saga in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == saga_ids
        failed = saga_queries.list_sagas(uow, FAILED, limit=10)
        assert [s.id for s in failed.items] == [saga_ids[i] for i in (1, 3, 5)]
        assert failed.next_cursor is None
        with pytest.raises(InvalidInput):
            saga_queries.list_sagas(uow, limit=1, cursor="not-a-cursor")


def test_recently_moved_first(app: Flask, saga_ids: list[str]) -> None:
    with runtime(app).db.uow() as uow:
        recent = saga_queries.recently_moved(uow, limit=3)
        assert [s.id for s in recent] == [saga_ids[2], saga_ids[4], saga_ids[0]]
        assert [s.id for s in saga_queries.recently_moved(uow, FAILED, limit=10)] == [
            saga_ids[5],
            saga_ids[3],
            saga_ids[1],
        ]


def test_one_saga_with_its_steps(app: Flask, saga_ids: list[str]) -> None:
    with runtime(app).db.uow() as uow:
        saga = saga_queries.get_saga(uow, saga_ids[0])
        assert [step.name for step in saga.steps] == ["reserve_stock"]
        for missing in ("sga_01M88S610N83SY6VPQ23SAANM8", "not an id"):
            with pytest.raises(NotFound, match="No saga"):
                saga_queries.get_saga(uow, missing)
