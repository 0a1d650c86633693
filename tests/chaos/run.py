"""A seeded chaos run on the real stack, then the checker; prints a one-screen report.

    .venv/bin/python -m tests.chaos.run [--profile short|long] [--seed N] [--broker redis|amqp]

The deployment is private to the run: its own PostgreSQL cluster and Redis (so that it may
restart them), with Redis or a RabbitMQ node of its own as the broker, gunicorn, two workers on
different queues, and beat, with the sandbox as the provider behind a proxy that the provider's
faults switch. Exits 1 if any invariant is violated.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import bindparam, create_engine, text

from app.config import load_settings
from app.db import Database
from app.payments import providers_for
from scripts.servers import Server, start_postgres
from tests.chaos import plan
from tests.chaos.checker import Verdict, check, report_lines
from tests.chaos.faults import Injector
from tests.chaos.journeys import Answer, Buyers, set_up_shop
from tests.chaos.proxy import ProviderProxy
from tests.chaos.tracker import Tracker
from tests.support.processes import wait_until
from tests.support.stack import BROKERS, Stack

SETTLE_SECONDS = 240  # after the faults stop: the longest retry back-off, then the sweeps


@dataclass
class Outcome:
    plan: plan.Plan
    broker: str
    verdict: Verdict
    answers: list[Answer]
    injected: Counter[str]
    seconds: float
    unfinished: int  # journeys still going when the run gave up on them

    def report(self) -> str:
        profile = self.plan.profile
        lines = [
            f"chaos run: profile {profile.name}, seed {self.plan.seed}, schedule {self.plan.digest()}, "
            f"broker {self.broker}, {self.seconds:.0f}s",
            f"operations: {len(self.answers)} requests for {profile.journeys} journeys"
            + (f" ({self.unfinished} unfinished)" if self.unfinished else ""),
        ]
        by_action = Counter(a.action for a in self.answers)
        statuses: dict[str, Counter[int]] = {}
        for answer in self.answers:
            statuses.setdefault(answer.action, Counter())[answer.status] += 1
        for action, count in sorted(by_action.items()):
            spread = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(statuses[action].items()))
            lines.append(f"  {action:<22} {count:>6}  ({spread})")
        lines.append(f"faults injected: {sum(self.injected.values())}")
        lines += [f"  {kind:<31} {self.injected[kind]}" for kind in plan.FAULTS]
        return "\n".join(lines + report_lines(self.verdict))


@contextmanager
def deployment(
    workdir: Path, profile: plan.Profile, broker: str
) -> Iterator[tuple[Stack, Server, ProviderProxy]]:
    postgres = start_postgres(workdir / "postgres", crash_safe=True)
    stack = Stack(
        postgres.url,
        broker,
        ORDERSAGA_PAYMENT_TIMEOUT_SECONDS=str(profile.payment_timeout),
        ORDERSAGA_SAGA_STALE_SECONDS="10",
        ORDERSAGA_STEP_MAX_RETRIES="8",
        ORDERSAGA_STEP_RETRY_BACKOFF_SECONDS="1",
    )
    proxy = ProviderProxy(stack.base_url).start()
    try:
        yield stack, postgres, proxy
    finally:
        proxy.close()
        stack.close()
        postgres.stop()


def run(profile: plan.Profile, seed: int, log_dir: Path | None = None, broker: str = "redis") -> Outcome:
    chosen = plan.build(seed, profile)
    workdir = log_dir or Path(tempfile.mkdtemp(prefix="ordersaga-chaos-"))
    with deployment(workdir, profile, broker) as (stack, postgres, proxy):
        worker_env = {"ORDERSAGA_PUBLIC_URL": proxy.url}
        stack.start_api()
        injector = Injector(stack, postgres, proxy, worker_env)
        injector.start_workers()
        stack.start_beat()
        shop = set_up_shop(stack.base_url, chosen.journeys, profile.flash_units)
        tracker = Tracker(create_engine(stack.database_url, pool_pre_ping=True)).start()
        buyers = Buyers(stack.base_url, shop, tracker, profile.payment_timeout)
        began, since = time.monotonic(), datetime.now(UTC)
        _play(chosen, buyers, injector, began)
        injector.settle()
        unfinished = buyers.finish(timeout=SETTLE_SECONDS)
        _settle(stack)
        tracker.close()
        settings = load_settings(stack.env)
        db = Database(settings.database_url)
        try:
            verdict = check(db, providers_for(settings), shop, buyers.answers, since)
        finally:
            db.dispose()
        if verdict.violations:
            (workdir / "logs.txt").write_text(stack.logs() + _rows_of(stack, verdict))
        return Outcome(
            chosen, broker, verdict, buyers.answers, injector.injected, time.monotonic() - began, unfinished
        )


def _play(chosen: plan.Plan, buyers: Buyers, injector: Injector, began: float) -> None:
    """Start each journey and fault at its offset from `began`."""
    timeline = sorted(
        [(j.at, 0, j) for j in chosen.journeys] + [(f.at, 1, f) for f in chosen.faults],
        key=lambda item: (item[0], item[1]),
    )
    for at, _, item in timeline:
        time.sleep(max(0.0, began + at - time.monotonic()))
        if isinstance(item, plan.Journey):
            buyers.begin(item)
        else:
            injector.inject(item)
    time.sleep(max(0.0, began + chosen.profile.seconds - time.monotonic()))


def _rows_of(stack: Stack, verdict: Verdict) -> str:
    """The rows of the first violations' subjects, for after the deployment is gone."""
    subjects = [v.subject for v in verdict.violations[:20]]
    queries = {
        "orders": "SELECT * FROM orders WHERE id IN :ids",
        "sagas": "SELECT * FROM sagas WHERE id IN :ids OR subject_id IN :ids",
        "saga steps": "SELECT st.* FROM saga_steps st JOIN sagas s ON s.id = st.saga_id"
        " WHERE s.id IN :ids OR s.subject_id IN :ids ORDER BY st.saga_id, st.id",
        "payments": "SELECT * FROM payments WHERE id IN :ids OR order_id IN :ids",
    }
    lines = []
    for name, query in queries.items():
        lines.append(f"===== {name}")
        statement = text(query).bindparams(bindparam("ids", expanding=True))
        with stack.db.connect() as connection:
            lines += [repr(tuple(row)) for row in connection.execute(statement, {"ids": subjects})]
    return "\n" + "\n".join(lines) + "\n"


def _settle(stack: Stack) -> None:
    """Wait until nothing moves any more: every saga at rest, no order in a passing state
    (bar those awaiting payment before their deadline), every message sent."""

    def at_rest() -> bool:
        busy = stack.sql(
            """SELECT (SELECT count(*) FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING'))
                    + (SELECT count(*) FROM orders WHERE status IN ('PENDING', 'PAID', 'CANCELLING')
                       OR (status = 'AWAITING_PAYMENT' AND payment_deadline <= now()))
                    + (SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL)
                    + (SELECT count(*) FROM orders WHERE status = 'CONFIRMED' AND NOT points_credited)
                    + (SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
                       WHERE p.status = 'SUCCEEDED' AND o.status = 'CANCELLED')"""
        )[0][0]
        return busy == 0

    with contextlib.suppress(AssertionError):  # the checker says what is left
        wait_until(at_rest, timeout=SETTLE_SECONDS, interval=1.0, what="the shop to come to rest")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(plan.PROFILES), default="short")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broker", choices=BROKERS, default="redis")
    args = parser.parse_args(argv)
    outcome = run(plan.PROFILES[args.profile], args.seed, broker=args.broker)
    print(outcome.report())
    return 1 if outcome.verdict.violations else 0


if __name__ == "__main__":
    sys.exit(main())
