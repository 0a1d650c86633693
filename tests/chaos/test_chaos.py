"""The short chaos profile on the real stack, with Redis and with RabbitMQ as the broker: every
fault injected, every kind of operation done, and the checker finds nothing wrong.
`make chaos PROFILE=long` is the long run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos import plan
from tests.chaos.run import run
from tests.support.stack import BROKERS


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("broker", BROKERS)
def test_the_short_chaos_profile_loses_nothing(tmp_path: Path, broker: str) -> None:
    seed = int(os.environ.get("ORDERSAGA_CHAOS_SEED", "1"))
    outcome = run(plan.PROFILES["short"], seed, log_dir=tmp_path, broker=broker)
    report = outcome.report()
    print(report)
    assert set(outcome.injected) == set(plan.FAULTS), report  # each kind of fault happened
    said = {(a.action, a.status) for a in outcome.answers}
    done = {
        ("order", 202),
        ("order+coupon", 202),
        ("order+key replayed", 202),
        ("flash purchase", 202),
        ("flash purchase", 409),  # some buyers found the sale sold out
        ("checkout pay", 303),
        ("checkout decline", 303),
        ("cancel", 202),
        ("webhook duplicate", 200),
        ("webhook out of order", 200),
    }
    assert done <= said, f"{done - said} never happened\n{report}"
    assert not outcome.verdict.violations, f"{report}\nlogs: {tmp_path / 'logs.txt'}"
