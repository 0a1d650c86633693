"""The API's relay thread: what requests commit goes out in batches, and a failure loses nothing
the sweep cannot send (the messages are in the outbox)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from app import relay_thread
from app.relay_thread import RelayThread
from tests.support.processes import wait_until


@dataclass(frozen=True)
class Message:
    id: int


class FakeRelay:
    """Records each batch; the first send waits until `release` is set, when `hold_first`."""

    def __init__(self, hold_first: bool = False, fail_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.sending = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.fail_first = fail_first

    def send(self, messages: list[Any]) -> int:
        self.sending.set()
        self.release.wait(10)
        self.batches.append([message.id for message in messages])
        if self.fail_first and len(self.batches) == 1:
            raise ConnectionError("broker down")
        return len(messages)


def thread_for(relay: FakeRelay, **kwargs: Any) -> RelayThread:
    return RelayThread(relay, **kwargs)  # type: ignore[arg-type]


def test_messages_committed_while_it_sends_go_out_together() -> None:
    relay = FakeRelay(hold_first=True)
    sender = thread_for(relay)
    sender([Message(1)])
    assert relay.sending.wait(10)
    sender([Message(2)])
    sender([Message(3), Message(4)])
    relay.release.set()
    wait_until(lambda: len(relay.batches) == 2, timeout=10, what="two batches")
    assert relay.batches == [[1], [2, 3, 4]]


def test_a_batch_is_at_most_max_batch_messages() -> None:
    relay = FakeRelay(hold_first=True)
    sender = thread_for(relay, max_batch=2)
    sender([Message(1)])
    assert relay.sending.wait(10)
    for number in (2, 3, 4):
        sender([Message(number)])
    relay.release.set()
    wait_until(lambda: sum(map(len, relay.batches)) == 4, timeout=10, what="every message")
    assert relay.batches == [[1], [2, 3], [4]]


def test_a_failed_send_is_logged_and_the_next_batch_still_goes(caplog: pytest.LogCaptureFixture) -> None:
    relay = FakeRelay(fail_first=True)
    sender = thread_for(relay)
    with caplog.at_level(logging.WARNING, logger=relay_thread.__name__):
        sender([Message(1)])
        wait_until(lambda: len(relay.batches) == 1, timeout=10, what="the first batch")
        sender([Message(2)])
        wait_until(lambda: len(relay.batches) == 2, timeout=10, what="the second batch")
    assert relay.batches == [[1], [2]]
    assert "the sweep will send messages [1]" in caplog.text


def test_stop_sends_what_is_queued_first() -> None:
    relay = FakeRelay(hold_first=True)
    sender = thread_for(relay)
    sender([Message(1)])
    assert relay.sending.wait(10)
    sender([Message(2)])
    relay.release.set()
    sender.stop()
    assert relay.batches == [[1], [2]]


def test_a_forked_process_starts_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    relay = FakeRelay()
    sender = thread_for(relay)
    sender([Message(1)])
    wait_until(lambda: relay.batches == [[1]], timeout=10, what="the parent's batch")
    parents = sender._thread
    monkeypatch.setattr(relay_thread.os, "getpid", lambda: -1)  # as in a child after fork
    sender([Message(2)])
    wait_until(lambda: relay.batches == [[1], [2]], timeout=10, what="the child's batch")
    assert sender._thread is not parents
