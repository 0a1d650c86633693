"""Which queues the sweep counts as behind, and what that holds back."""

from __future__ import annotations

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
