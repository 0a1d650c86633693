"""Which queues the sweep counts as behind, and what that holds back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tasks import sweeps


def test_a_queue_is_behind_from_a_backlog_on_not_for_messages_in_passage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    depths = {"orders": 0, "inventory": sweeps.BEHIND_AT - 1, "payments": sweeps.BEHIND_AT, "members": 5000}
    monkeypatch.setattr(sweeps, "queue_depths", lambda url: depths)
    assert sweeps.queues_behind("redis://unused") == {"payments", "members"}


def test_a_broker_that_cannot_be_asked_holds_nothing_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(url: str) -> dict[str, int]:
        raise ConnectionError("refused")

    monkeypatch.setattr(sweeps, "queue_depths", unreachable)
    assert sweeps.queues_behind("redis://unused") == set()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word: a broker hung, not down."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("scheme", ["redis://127.0.0.1:{}/0", "amqp://guest:guest@127.0.0.1:{}//"])
def test_a_hung_broker_cannot_hold_the_sweep(silent_port: int, scheme: str) -> None:
    answered: list[set[str]] = []
    asking = threading.Thread(
        target=lambda: answered.append(sweeps.queues_behind(scheme.format(silent_port)))
    )
    asking.start()
    asking.join(timeout=30)  # a liveness bound: the question times out after a few seconds
    assert not asking.is_alive(), "the sweep waited on a broker that never answers"
    assert answered == [set()]
