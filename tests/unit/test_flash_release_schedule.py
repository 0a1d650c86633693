"""Beat's schedules for backstops: the flash releaser is due only while a winner's first step is
held, the sandbox's webhook redelivery only while a delivery is overdue."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import text

from app import outbox
from app.extension import runtime
from app.sandbox.models import SandboxPayment, SandboxWebhookDelivery
from app.timeutil import utcnow
from tasks.flash import RELEASE_EVERY_SECONDS, WhileHeld
from tasks.sandbox import WhileOverdue


def _schedule(flask_app: Flask) -> WhileHeld:
    """As beat holds it: bound to the Celery app of the process."""
    return WhileHeld(RELEASE_EVERY_SECONDS, app=flask_app.extensions["celery"])


def _hold_a_first_step(flask_app: Flask) -> int:
    with runtime(flask_app).db.uow() as uow:
        message = outbox.hold(
            uow, "orders.saga.reserve_stock", {"saga_id": "s", "order_id": "o"}, "inventory", due=utcnow()
        )
        uow.commit()
    return message.id


def test_it_is_due_each_tick_only_while_a_first_step_is_held(app: Flask) -> None:
    schedule = _schedule(app)
    a_tick_ago = schedule.now() - timedelta(seconds=RELEASE_EVERY_SECONDS)
    assert tuple(schedule.is_due(a_tick_ago)) == (False, RELEASE_EVERY_SECONDS)  # asks again in a tick

    message_id = _hold_a_first_step(app)
    assert tuple(schedule.is_due(a_tick_ago)) == (True, RELEASE_EVERY_SECONDS)
    assert not schedule.is_due(schedule.now()).is_due  # held, but not a tick since the last one

    with runtime(app).db.engine.begin() as connection:  # as the releaser claims it
        connection.execute(text("UPDATE outbox_messages SET held = false WHERE id = :id"), {"id": message_id})
    assert not schedule.is_due(a_tick_ago).is_due


def test_when_the_database_cannot_say_it_sends_anyway(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    schedule = _schedule(app)
    with runtime(app).db.engine.begin() as connection:
        connection.execute(text("DROP TABLE outbox_messages"))
    with caplog.at_level(logging.WARNING, logger="tasks.schedules"):
        assert schedule.is_due(schedule.now() - timedelta(seconds=RELEASE_EVERY_SECONDS)).is_due
    assert "WhileHeld cannot tell whether there is work" in caplog.text


def test_the_webhook_redelivery_is_due_only_while_a_delivery_is_overdue(app: Flask) -> None:
    schedule = WhileOverdue(30.0, app=app.extensions["celery"])
    a_tick_ago = schedule.now() - timedelta(seconds=30)
    assert not schedule.is_due(a_tick_ago).is_due
    long_ago = utcnow() - timedelta(minutes=5)
    with runtime(app).db.uow() as uow:
        uow.session.add(
            SandboxPayment(
                id="pay_1", amount_cents=100, currency="CNY", callback_url="http://h/", reference="-"
            )
        )
        uow.session.flush()
        uow.session.add(
            SandboxWebhookDelivery(
                id="evt_1",
                payment_id="pay_1",
                type="payment.succeeded",
                payload={},
                callback_url="http://127.0.0.1:1/",
                attempts=1,
                next_attempt_at=long_ago,
            )
        )
        uow.commit()
    assert schedule.is_due(a_tick_ago).is_due
