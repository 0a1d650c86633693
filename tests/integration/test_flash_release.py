"""The flash releaser on the real stack (gunicorn, a worker, beat, PostgreSQL, Redis): beat sends
`orders.flash.release` only while a winner's first step is held, and so releases it at its turn.

Beat's own log is the record of what it sends. The sweep, sent every second here, is the clock:
"five sweeps sent" is five of beat's ticks, however slow the machine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from app.flash_gate import PACE_KEY
from scripts.servers import Server
from tasks.flash import RELEASE_TASK
from tests.support.flash import buy, first_steps, sale
from tests.support.processes import wait_until
from tests.support.stack import Stack, running_stack

RELEASE_SENT = f"Sending due task flash-release ({RELEASE_TASK})"
SWEEP_SENT = "Sending due task sweep (orders.sweep)"


@pytest.fixture(scope="module")
def stack(pg_server: Server) -> Iterator[Stack]:
    # The sweep re-drives a paced saga that has not moved for the stale limit: far off here, so
    # only the releaser can start one.
    with running_stack(pg_server.url, ORDERSAGA_SAGA_STALE_SECONDS="60") as running:
        yield running


def _beat_log(stack: Stack) -> str:
    return stack.processes["beat"].log()


def _after_sweeps(stack: Stack, more: int) -> str:
    """Beat's log once it has sent `more` sweeps beyond those it shows now."""
    target = _beat_log(stack).count(SWEEP_SENT) + more

    def swept() -> str | None:
        log = _beat_log(stack)
        return log if log.count(SWEEP_SENT) >= target else None

    return wait_until(swept, timeout=30, what=f"beat to send {more} more sweeps\n{stack.logs()}")


def _release_ticks(stack: Stack) -> list[datetime]:
    """When beat sent each RELEASE_TASK, from its log's local timestamps."""
    stamps = re.findall(rf"^\[([0-9-]+ [0-9:,]+): .*{re.escape(RELEASE_SENT)}", _beat_log(stack), re.M)
    return [datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC) for stamp in stamps]


def test_with_nothing_held_beat_sends_no_release(stack: Stack) -> None:
    assert stack.sql("SELECT count(*) AS n FROM outbox_messages WHERE held")[0].n == 0
    beat_from, worker_from = len(_beat_log(stack)), len(stack.processes["worker"].log())
    log = _after_sweeps(stack, 5)[beat_from:]
    assert SWEEP_SENT in log and RELEASE_SENT not in log
    assert f"Task {RELEASE_TASK}[" not in stack.processes["worker"].log()[worker_from:]  # received, succeeded


def test_a_held_first_step_is_released_within_a_tick_of_its_turn_then_beat_goes_quiet(
    stack: Stack,
) -> None:
    flash = sale(stack, quantity=1)
    gate = redis.Redis.from_url(stack.redis.url)
    gate.set(PACE_KEY, int(time.time() * 1000) + 3000, px=10_000)  # the winner's turn: in 3 s
    gate.close()
    answer = buy(stack, flash, stack.user())
    assert answer.status_code == 202, answer.text
    order_id = answer.json()["order_id"]
    assert stack.wait_order(order_id)["status"] == "AWAITING_PAYMENT"
    [step] = first_steps(stack, flash)
    assert step.started_at >= step.not_before - timedelta(milliseconds=10), "it ran before its turn"
    # Beat's tick, not how fast a loaded machine's worker runs it: one comes about a second after
    # the turn (a few on a loaded machine). Had none come, the saga would have waited a minute,
    # for the sweep.
    turn = step.not_before
    assert [sent for sent in _release_ticks(stack) if turn <= sent <= turn + timedelta(seconds=5)]

    released = stack.sql("SELECT count(*) AS n FROM outbox_messages WHERE held")[0].n == 0
    assert released, "the releaser claimed no message (a saga the sweep re-drives leaves it held)"
    # Beat logs a send before it looks at its next entry: two sweeps on, a tick it decided on
    # while the message was still held shows in its log.
    sent = _after_sweeps(stack, 2).count(RELEASE_SENT)
    assert sent > 0
    assert _after_sweeps(stack, 5).count(RELEASE_SENT) == sent
