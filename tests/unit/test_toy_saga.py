"""The saga engine on its own: a three-step saga that has nothing to do with orders, on SQLite.

A trip is booked as a flight, a hotel and a charge; the flight and the hotel are cancelled if a
later step says no. A tiny broker here delivers the outbox's messages to the engine the way the
step tasks do (tasks/saga.py), so each test drives the saga message by message.

`python -m tests.unit.test_toy_saga` runs every scenario in a fresh interpreter and then checks
that no order, flash-sale or payment module was imported: the engine needs none of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import Database, UnitOfWork
from app.models.base import Base
from app.models.outbox import OutboxMessage
from app.timeutil import utcnow
from sagas.definition import BusinessFailure, RetryPolicy, SagaContext, SagaDefinition, Step
from sagas.engine import SagaEngine
from sagas.models import Saga, SagaStep

TABLES = [Saga.__table__, SagaStep.__table__, OutboxMessage.__table__]


@dataclass
class Trip:
    """The toy's "other systems": what was booked, and what each may answer next."""

    booked: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    hotel_full: bool = False
    card_faults: int = 0  # the next charges that fail for a transient reason

    def book(self, what: str) -> Callable[[UnitOfWork, SagaContext], None]:
        def action(_uow: UnitOfWork, ctx: SagaContext) -> None:
            if what == "hotel" and self.hotel_full:
                raise BusinessFailure("no_rooms")
            if what == "charge" and self.card_faults > 0:
                self.card_faults -= 1
                raise ConnectionError("the card network timed out")
            self.booked.append(f"{what}:{ctx.subject_id}")

        return action

    def cancel(self, what: str) -> Callable[[UnitOfWork, SagaContext], None]:
        def compensation(_uow: UnitOfWork, ctx: SagaContext) -> None:
            if ctx.action_applied:  # an action that never took effect has nothing to undo
                self.cancelled.append(f"{what}:{ctx.subject_id}")

        return compensation


def trip_saga(trip: Trip) -> SagaDefinition:
    retry = RetryPolicy(max_retries=2, backoff_seconds=0)
    return SagaDefinition(
        name="trip",
        task_prefix="trips.saga",
        subject_name="trip_id",
        steps=(
            Step(
                "book_flight",
                queue="flights",
                action=trip.book("flight"),
                compensation_name="cancel_flight",
                compensation=trip.cancel("flight"),
                retry=retry,
            ),
            Step(
                "book_hotel",
                queue="hotels",
                action=trip.book("hotel"),
                compensation_name="cancel_hotel",
                compensation=trip.cancel("hotel"),
                retry=retry,
            ),
            Step("charge", queue="cards", action=trip.book("charge"), retry=retry),
        ),
    )


class Toy:
    """The engine, its database and a broker that delivers one outbox message at a time."""

    def __init__(self, directory: Path) -> None:
        self.db = Database(f"sqlite:///{directory}/toy.sqlite3")
        Base.metadata.create_all(self.db.engine, tables=TABLES)
        self.trip = Trip()
        self.now = utcnow()
        self.definition = trip_saga(self.trip)
        self.engine = SagaEngine(self.db.uow, {"trip": self.definition}, clock=lambda: self.now)
        self.attempts: dict[int, int] = {}  # a message's retries so far, as Celery counts them
        self.taken_up_to = 0  # the id of the last message taken

    def start(self, trip_id: str) -> str:
        with self.db.uow() as uow:
            saga_id = self.engine.start(uow, "trip", trip_id).id
            uow.commit()
        return saga_id

    def take(self) -> OutboxMessage | None:
        """The oldest message not taken yet, as a broker's queue hands them out in order."""
        with self.db.uow() as uow:
            message = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.id > self.taken_up_to).order_by(OutboxMessage.id)
            ).first()
        if message is not None:
            self.taken_up_to = message.id
        return message

    def deliver(self, message: OutboxMessage) -> None:
        """What a step task does with its message: run it; on a fault, retry it until the policy
        gives up, then the saga is FAILED."""
        step_name = message.task.removeprefix("trips.saga.")
        step = self.definition.step(step_name)
        kind = "action" if step_name == step.name else "compensation"
        saga_id = message.kwargs["saga_id"]
        assert message.kwargs["trip_id"], "the subject's id rides in every message"
        while True:
            try:
                if kind == "action":
                    self.engine.run_action(saga_id, step_name)
                else:
                    self.engine.run_compensation(saga_id, step_name)
                return
            except ConnectionError as error:
                retries = self.attempts.get(message.id, 0)
                if retries >= step.retry.max_retries:
                    self.engine.mark_failed(saga_id, step_name, kind, str(error))
                    return
                self.engine.note_failed_attempt(saga_id, step_name, kind, str(error))
                self.attempts[message.id] = retries + 1

    def run(self) -> None:
        """Deliver until the outbox is empty."""
        while (message := self.take()) is not None:
            self.deliver(message)

    def saga(self, saga_id: str) -> Saga:
        with self.db.uow() as uow:
            return self.engine.get(uow, saga_id)

    def steps(self, saga_id: str) -> list[tuple[str, str, str]]:
        return [(step.kind, step.name, step.status) for step in self.saga(saga_id).steps]


def _toy() -> Iterator[Toy]:
    with tempfile.TemporaryDirectory() as directory:
        toy = Toy(Path(directory))
        yield toy
        toy.db.dispose()


@pytest.fixture
def toy() -> Iterator[Toy]:
    yield from _toy()


def test_forward_every_step_runs_in_order(toy: Toy) -> None:
    saga_id = toy.start("trp_1")
    toy.run()
    assert toy.saga(saga_id).status == "COMPLETED"
    assert toy.trip.booked == ["flight:trp_1", "hotel:trp_1", "charge:trp_1"]
    assert toy.steps(saga_id) == [
        ("action", "book_flight", "SUCCEEDED"),
        ("action", "book_hotel", "SUCCEEDED"),
        ("action", "charge", "SUCCEEDED"),
    ]


def test_a_business_failure_compensates_what_was_done_in_reverse(toy: Toy) -> None:
    toy.trip.hotel_full = True
    saga_id = toy.start("trp_2")
    toy.run()
    saga = toy.saga(saga_id)
    assert (saga.status, saga.abort_reason) == ("COMPENSATED", "no_rooms")
    assert toy.trip.booked == ["flight:trp_2"]
    assert toy.trip.cancelled == ["flight:trp_2"]  # the hotel never took effect: nothing to undo
    assert ("action", "charge", "SKIPPED") in toy.steps(saga_id)
    assert ("compensation", "cancel_flight", "SUCCEEDED") in toy.steps(saga_id)


def test_a_transient_failure_is_retried_and_then_succeeds(toy: Toy) -> None:
    toy.trip.card_faults = 2  # within the policy's two retries
    saga_id = toy.start("trp_3")
    toy.run()
    saga = toy.saga(saga_id)
    assert saga.status == "COMPLETED"
    charge = saga.step("charge", "action")
    assert charge is not None and charge.attempts == 3 and charge.error is None


def test_exhausted_retries_leave_it_failed_until_an_operator_retries(toy: Toy) -> None:
    toy.trip.card_faults = 3  # one more than the policy retries
    saga_id = toy.start("trp_4")
    toy.run()
    saga = toy.saga(saga_id)
    assert (saga.status, saga.failed_kind) == ("FAILED", "action")
    assert ("action", "charge", "FAILED") in toy.steps(saga_id)

    toy.trip.card_faults = 0
    toy.engine.retry(saga_id)
    toy.run()
    assert toy.saga(saga_id).status == "COMPLETED"
    assert toy.trip.booked == ["flight:trp_4", "hotel:trp_4", "charge:trp_4"]


def test_a_lost_message_is_redriven_by_the_sweep_and_a_duplicate_does_nothing(toy: Toy) -> None:
    saga_id = toy.start("trp_5")
    first = toy.take()
    assert first is not None
    toy.deliver(first)  # the flight; the hotel's message is next
    lost = toy.take()
    assert lost is not None and lost.task == "trips.saga.book_hotel"  # taken, never delivered

    assert toy.engine.redrive_stale(timedelta(seconds=60)) == 0  # not stale yet
    toy.now += timedelta(seconds=61)
    assert toy.engine.redrive_stale(timedelta(seconds=60)) == 1
    toy.run()
    toy.deliver(lost)  # the lost copy turns up after all: the saga has moved on
    assert toy.saga(saga_id).status == "COMPLETED"
    assert toy.trip.booked == ["flight:trp_5", "hotel:trp_5", "charge:trp_5"]


def test_a_saga_still_waiting_is_redriven_ever_less_often_until_it_moves(toy: Toy) -> None:
    """A message only slow (a long queue) gets a duplicate after 60 s, then after 120 s more,
    then 240 s: not one every 60 s for as long as the backlog lasts."""
    saga_id = toy.start("trp_6")
    stale = timedelta(seconds=60)
    redriven_at = []
    for second in range(1, 1000):
        toy.now += timedelta(seconds=1)
        if toy.engine.redrive_stale(stale):
            redriven_at.append(second)
    assert redriven_at == [61, 181, 421, 901]  # waits of 60, 120, 240 and 480 s
    toy.run()  # the backlog drains: the saga moves, and the back-off starts again
    assert toy.saga(saga_id).status == "COMPLETED"
    assert toy.saga(saga_id).redrives == 0


def test_a_saga_whose_queue_is_behind_is_left_until_the_queue_has_drained(toy: Toy) -> None:
    """Its message may be among those waiting: a copy would only lengthen the queue."""
    saga_id = toy.start("trp_7")
    toy.now += timedelta(seconds=61)
    stale = timedelta(seconds=60)
    assert toy.engine.redrive_stale(stale, behind={"flights"}) == 0
    assert toy.engine.redrive_stale(stale, behind={"hotels", "cards"}) == 1  # not its queue
    toy.run()
    assert toy.saga(saga_id).status == "COMPLETED"


def test_a_backlog_that_never_drains_holds_a_redrive_back_only_for_the_longest_wait(toy: Toy) -> None:
    """Under a load that always keeps messages waiting, a message the broker lost must still go
    out again: after 16 stale periods (the back-off's longest wait), and as rarely after that."""
    toy.start("trp_8")
    stale = timedelta(seconds=60)
    redriven_at = []
    for second in range(1, 2000):
        toy.now += timedelta(seconds=1)
        if toy.engine.redrive_stale(stale, behind={"flights"}):
            redriven_at.append(second)
    assert redriven_at == [960, 1920]


SHOP_MODULES = ("app.services", "app.models.orders", "app.models.flash_sales", "app.models.payments")
SHOP_MODULES += ("app.flash_gate", "app.payments", "app.web", "flask", "celery")


SCENARIOS = (
    test_forward_every_step_runs_in_order,
    test_a_business_failure_compensates_what_was_done_in_reverse,
    test_a_transient_failure_is_retried_and_then_succeeds,
    test_exhausted_retries_leave_it_failed_until_an_operator_retries,
    test_a_lost_message_is_redriven_by_the_sweep_and_a_duplicate_does_nothing,
    test_a_saga_whose_queue_is_behind_is_left_until_the_queue_has_drained,
)


def _run_every_scenario() -> None:
    for scenario in SCENARIOS:
        for harness in _toy():
            scenario(harness)
    loaded = sorted(name for name in sys.modules if name.startswith(SHOP_MODULES))
    assert not loaded, f"the engine loaded {loaded}"
    print(f"{len(SCENARIOS)} scenarios passed")


def test_the_engine_runs_without_any_order_flash_sale_or_payment_module() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.unit.test_toy_saga"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(SCENARIOS)} scenarios passed" in done.stdout


if __name__ == "__main__":
    _run_every_scenario()
