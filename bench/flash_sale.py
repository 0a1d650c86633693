"""Flash sale under load, on the real stack (gunicorn, celery workers, PostgreSQL, Redis).

N buyers send M purchase attempts for a sale of Q units over C keep-alive connections. Printed:
accepted, rejected by reason, oversold units (must be 0), purchase requests per second, p50/p99
latency of rejections and of acceptances, SQL statements per rejected request (from the
service's own per-endpoint statement counter), and, measured in the same run with the same
client and server settings, the requests per second of a trivial JSON endpoint (`/healthz`), so
the gate's cost reads as a ratio.

    .venv/bin/python -m bench.flash_sale [--buyers 2000] [--attempts 20000] [--units 500]
                                         [--connections 64] [--rounds 3] [--api-workers 2]
                                         [--saga-rate N] [--saga-nice N]
                                         [--json PATH]

Each round runs the trivial endpoint, a fresh sale, and refusals alone, back to back; the summary
gives each round's figures and their medians, so that ratios compare runs side by side, where
the two cores went in each phase (bench/cpu.py), and when the last acceptance came. Per round it
also prints, from the database's timestamps, when the winners' sagas started (first and last)
and when the last order turned AWAITING_PAYMENT, and the purchase answers' p50/p99 and codes;
`--json PATH` writes each round's figures to a file. The saga
workers run at the service's ORDERSAGA_WORKER_NICE unless `--saga-nice` says otherwise, and the
winners' sagas are paced at the service's ORDERSAGA_FLASH_SAGAS_PER_SECOND unless `--saga-rate`
says otherwise.

The client (bench/load.py) is one asyncio process on the same two cores as the server; it prints
the share of a core it used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.config import load_settings
from bench.cpu import CpuUse, cpu_use
from bench.load import Reply, Result, blast, request_bytes
from tests.support.api import ADMIN
from tests.support.processes import celery_worker, gunicorn, wait_until
from tests.support.stack import Stack

PURCHASE_SOURCE = "flash_sales.purchase"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def sql_statements(stack: Stack, source: str) -> float:
    text = stack.call("GET", "/metrics").text
    match = re.search(rf'^ordersaga_sql_statements_total{{source="{re.escape(source)}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def open_sale(goods_id: str, units: int) -> dict[str, Any]:
    """The body of a sale of `units` at 100 cents, one per buyer, open from now for an hour."""
    now = datetime.now(UTC)
    return {
        "goods_id": goods_id,
        "price_cents": 100,
        "quantity": units,
        "per_user_limit": 1,
        "starts_at": (now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ends_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def sale_settings(saga_rate: int) -> dict[str, str]:
    """The service's settings for a bench sale: buyers are not rate-limited (the client reuses
    2,000 tokens for 20,000 attempts), and the sweep runs at the service's own pace, not the
    tests' fast one (with a backlog of sagas, a 1-second sweep re-driving sagas idle for 3
    seconds floods the queues with duplicates)."""
    return {
        "ORDERSAGA_FLASH_RATE_PER_SECOND": "1000",
        "ORDERSAGA_FLASH_SAGAS_PER_SECOND": str(saga_rate),
        "ORDERSAGA_SWEEP_INTERVAL_SECONDS": "60",
        "ORDERSAGA_SAGA_STALE_SECONDS": "120",
    }


@dataclass(frozen=True)
class Round:
    """One round: the trivial endpoint, a fresh sale, then refusals only, back to back."""

    trivial: Result
    sale: Result
    refusals: Result
    sold: int
    sql_in_sale: float  # statements of the purchase endpoint during the sale
    sql_in_refusals: float  # and during the refusals-only phase
    cpu: dict[str, CpuUse]  # per phase: where the cores went
    settled_after: float  # seconds from the sale's start until every winner's saga awaited payment
    sagas_in_sale: int  # winners' sagas whose first step started before the sale's last reply
    first_saga_after: float  # seconds from the sale's start until the first winner's saga started
    last_saga_after: float  # and until the last one started
    last_awaiting_after: float  # and until the last order turned AWAITING_PAYMENT (its updated_at)

    def answered_per_second(self, seconds: int) -> list[int]:
        """Purchase attempts answered in each of the sale's first `seconds` seconds."""
        counts = [0] * seconds
        for reply in self.sale.replies:
            second = int(reply.done_at - self.sale.started)
            if second < seconds:
                counts[second] += 1
        return counts

    @property
    def accepted(self) -> list[Reply]:
        return [r for r in self.sale.replies if r.code == "accepted"]

    @property
    def rejected(self) -> list[Reply]:
        return [r for r in self.sale.replies if r.code != "accepted"]

    @property
    def refused_only(self) -> list[Reply]:
        return [r for r in self.refusals.replies if r.status >= 300]

    @property
    def sql_per_acceptance(self) -> float:
        return self.sql_in_sale / max(1, len(self.accepted))

    @property
    def sql_per_refusal(self) -> float:
        return self.sql_in_refusals / max(1, len(self.refused_only))


def one_round(stack: Stack, args: argparse.Namespace, tokens: list[str]) -> Round:
    goods = stack.goods(stock=args.units)
    sale = stack.ok("POST", "/api/v1/flash-sales", json=open_sale(goods["id"], args.units), headers=ADMIN)
    host, port = "127.0.0.1", stack.port
    here = f"{host}:{port}"
    healthz = request_bytes("GET", "/healthz", here)
    purchase = f"/api/v1/flash-sales/{sale['id']}/purchase"
    body = json.dumps({"quantity": 1}).encode()
    attempts = [
        request_bytes("POST", purchase, here, body, tokens[i % len(tokens)]) for i in range(args.attempts)
    ]

    with cpu_use() as trivial_cpu:
        trivial = blast(host, port, [healthz] * args.attempts, args.connections)
    sql_before = sql_statements(stack, PURCHASE_SOURCE)
    wall_before, perf_before = time.time(), time.perf_counter()
    with cpu_use() as sale_cpu:
        sale_result = blast(host, port, attempts, args.connections)
    sale_epoch = wall_before + (sale_result.started - perf_before)  # the sale's start, wall clock
    sale_over = datetime.now(UTC)
    sql_after_sale = sql_statements(stack, PURCHASE_SOURCE)
    # The sale's sagas finish before refusals are measured alone, and before the next round.
    wait_until(
        lambda: (
            not stack.sql(
                "SELECT 1 FROM orders WHERE flash_sale_id = :id AND status = 'PENDING' LIMIT 1", id=sale["id"]
            )
        ),
        timeout=float(os.environ.get("BENCH_SETTLE_TIMEOUT", "300")),
        what="the sale's sagas to reach AWAITING_PAYMENT",
    )
    settled_after = time.perf_counter() - sale_result.started
    sagas_in_sale = stack.sql(
        """SELECT count(*) AS n FROM saga_steps step
           JOIN sagas s ON s.id = step.saga_id JOIN orders o ON o.id = s.subject_id
           WHERE o.flash_sale_id = :id AND step.position = 0 AND step.kind = 'action'
             AND step.started_at < :over""",
        id=sale["id"],
        over=sale_over,
    )[0].n
    # From the database's own timestamps, not polled: when the winners' first steps started, and
    # when the last order changed status (to AWAITING_PAYMENT: nobody pays in the bench).
    times = stack.sql(
        """SELECT min(step.started_at) AS first, max(step.started_at) AS last FROM saga_steps step
           JOIN sagas s ON s.id = step.saga_id JOIN orders o ON o.id = s.subject_id
           WHERE o.flash_sale_id = :id AND step.position = 0 AND step.kind = 'action'""",
        id=sale["id"],
    )[0]
    awaiting = stack.sql(
        "SELECT max(updated_at) AS last FROM orders"
        " WHERE flash_sale_id = :id AND status = 'AWAITING_PAYMENT'",
        id=sale["id"],
    )[0].last
    # Only refusals now (the sale is sold out): every statement here would be a refusal's.
    with cpu_use() as refusals_cpu:
        refusals = blast(host, port, attempts[: args.attempts // 5], args.connections)
    sql_after_refusals = sql_statements(stack, PURCHASE_SOURCE)

    sold = stack.sql(
        "SELECT coalesce(sum(i.quantity), 0) AS n FROM order_items i JOIN orders o ON o.id = i.order_id "
        "WHERE o.flash_sale_id = :id AND o.status NOT IN ('CANCELLED', 'REFUNDED')",
        id=sale["id"],
    )[0].n
    return Round(
        trivial,
        sale_result,
        refusals,
        int(sold),
        sql_in_sale=sql_after_sale - sql_before,
        sql_in_refusals=sql_after_refusals - sql_after_sale,
        cpu={"trivial": trivial_cpu, "sale": sale_cpu, "refusals": refusals_cpu},
        settled_after=settled_after,
        sagas_in_sale=int(sagas_in_sale),
        first_saga_after=_after(times.first, sale_epoch),
        last_saga_after=_after(times.last, sale_epoch),
        last_awaiting_after=_after(awaiting, sale_epoch),
    )


def _after(moment: datetime | None, epoch: float) -> float:
    """Seconds from `epoch` (wall clock) to a timestamp the database holds (nan when none)."""
    if moment is None:
        return float("nan")
    if moment.tzinfo is None:  # PostgreSQL's timestamptz reads back aware; be safe anyway
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - epoch


def report(rounds: list[Round], args: argparse.Namespace) -> None:
    print(
        f"\nflash sale: {args.attempts} attempts by {args.buyers} buyers for {args.units} units, "
        f"{args.connections} keep-alive connections, {args.api_workers} gunicorn workers x "
        f"{args.api_threads} threads, {args.saga_workers} saga worker processes at nice {args.saga_nice}, "
        f"flash sagas paced at {args.saga_rate}/s; "
        f"{len(rounds)} rounds, each a fresh sale"
    )
    print(
        "\n  round  purchase/s  refusals/s  trivial/s  purchase/trivial  refusals/trivial"
        "  rejection p50/p99 ms  refusal p99 ms  trivial p99 ms  client CPU"
    )
    rows = []
    for number, r in enumerate(rounds, 1):
        rejected = [x.seconds for x in r.rejected]
        row = {
            "purchase": r.sale.per_second,
            "refusals": r.refusals.per_second,
            "trivial": r.trivial.per_second,
            "ratio": r.sale.per_second / r.trivial.per_second,
            "refusal_ratio": r.refusals.per_second / r.trivial.per_second,
            "rejection_p50": pct(rejected, 0.5),
            "rejection_p99": pct(rejected, 0.99),
            "refusal_p99": pct([x.seconds for x in r.refused_only], 0.99),
            "trivial_p99": pct([x.seconds for x in r.trivial.replies], 0.99),
        }
        rows.append(row)
        client = max(x.client_cpu / x.wall for x in (r.trivial, r.sale, r.refusals))
        print(
            f"  {number:>5}  {row['purchase']:10.0f}  {row['refusals']:10.0f}  {row['trivial']:9.0f}"
            f"  {row['ratio']:16.2f}  {row['refusal_ratio']:16.2f}"
            f"  {row['rejection_p50']:9.1f} / {row['rejection_p99']:6.1f}  {row['refusal_p99']:14.1f}"
            f"  {row['trivial_p99']:14.1f}  {client:8.0%} of a core"
        )
    med = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    print(
        f"  {'median':>5}  {med['purchase']:10.0f}  {med['refusals']:10.0f}  {med['trivial']:9.0f}"
        f"  {med['ratio']:16.2f}  {med['refusal_ratio']:16.2f}"
        f"  {med['rejection_p50']:9.1f} / {med['rejection_p99']:6.1f}  {med['refusal_p99']:14.1f}"
        f"  {med['trivial_p99']:14.1f}"
    )

    print("\n  CPU by kind of process, in cores (2 in all), per phase:")
    for number, r in enumerate(rounds, 1):
        for phase, result in (("trivial", r.trivial), ("sale", r.sale), ("refusals", r.refusals)):
            print(f"  {number:>5}  {phase:<9} {r.cpu[phase].shares(result.wall)}")

    winners = ", ".join(
        f"{max(x.done_at for x in r.accepted) - r.sale.started:.1f} of {r.sale.wall:.1f} s"
        for r in rounds
        if r.accepted
    )
    print(f"\n  the last acceptance came after (per round): {winners}")
    report_saga_starts(rounds)
    for number, r in enumerate(rounds, 1):
        answers = [x.seconds for x in r.sale.replies]
        codes: dict[str, int] = {}
        for reply in r.sale.replies:
            codes[reply.code] = codes.get(reply.code, 0) + 1
        unavailable = sum(1 for x in r.sale.replies if x.status == 503)
        print(
            f"  round {number}: purchase answers p50/p99 {pct(answers, 0.5):.1f} /"
            f" {pct(answers, 0.99):.1f} ms, 503s {unavailable}, by code {dict(sorted(codes.items()))}"
        )
    for number, r in enumerate(rounds, 1):
        last_win = max((x.done_at for x in r.accepted), default=r.sale.started)
        later = [x.seconds for x in r.rejected if x.done_at > last_win]
        print(
            f"  round {number}: attempts answered in the sale's first seconds: {r.answered_per_second(6)};"
            f" rejections after the last acceptance p50/p99 {pct(later, 0.5):.1f} / {pct(later, 0.99):.1f} ms"
        )

    accepted = [x for r in rounds for x in r.accepted]
    rejected = [x for r in rounds for x in r.rejected]
    by_reason: dict[str, int] = {}
    for reply in rejected:
        by_reason[reply.code] = by_reason.get(reply.code, 0) + 1
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items()))
    per_round = ", ".join(str(len(r.accepted)) for r in rounds)
    print(f"\n  accepted                {len(accepted)}  (per round: {per_round})")
    print(f"  rejected                {len(rejected)}  ({reasons})")
    oversold = [max(0, r.sold - args.units) for r in rounds]
    sold = ", ".join(str(r.sold) for r in rounds)
    print(f"  oversold units          {sum(oversold)}  (units sold per sale: {sold})")
    acceptance = [x.seconds for x in accepted]
    print(
        f"  acceptance latency      p50 {pct(acceptance, 0.5):7.1f} ms   p99 {pct(acceptance, 0.99):7.1f} ms"
    )
    refused = sum(len(r.refused_only) for r in rounds)
    per_refusal = max(r.sql_per_refusal for r in rounds)
    print(f"  SQL statements per rejected request: {per_refusal:.3f} (most of any round; {refused} refusals)")
    per_acceptance = statistics.median(r.sql_per_acceptance for r in rounds)
    print(f"  SQL statements per accepted order:   {per_acceptance:.1f} (median; all the sale's requests)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump([round_figures(r) for r in rounds], out, indent=1)


def report_saga_starts(rounds: list[Round]) -> None:
    """When the winners' sagas ran, per round."""
    settled = ", ".join(f"{r.settled_after:.1f} s" for r in rounds)
    print(f"  every winner's order awaited payment after (per round, polled): {settled}")
    during = ", ".join(str(r.sagas_in_sale) for r in rounds)
    print(f"  winners' sagas that started during the sale (per round): {during}")
    starts = ", ".join(f"{r.first_saga_after:.1f}-{r.last_saga_after:.1f} s" for r in rounds)
    print(f"  the winners' sagas started, first to last (per round, from the database): {starts}")
    awaiting = ", ".join(f"{r.last_awaiting_after:.1f} s" for r in rounds)
    print(f"  the last order turned AWAITING_PAYMENT after (per round, from the database): {awaiting}")


def round_figures(r: Round) -> dict[str, Any]:
    """One round's figures, for --json: what the text report prints, per round."""
    answers = [x.seconds for x in r.sale.replies]
    codes: dict[str, int] = {}
    for reply in r.sale.replies:
        codes[reply.code] = codes.get(reply.code, 0) + 1
    last_win = max((x.done_at for x in r.accepted), default=r.sale.started)
    return {
        "purchase_per_second": r.sale.per_second,
        "trivial_per_second": r.trivial.per_second,
        "refusals_per_second": r.refusals.per_second,
        "purchase_p50_ms": pct(answers, 0.5),
        "purchase_p99_ms": pct(answers, 0.99),
        "rejection_p50_ms": pct([x.seconds for x in r.rejected], 0.5),
        "rejection_p99_ms": pct([x.seconds for x in r.rejected], 0.99),
        "acceptance_p50_ms": pct([x.seconds for x in r.accepted], 0.5),
        "acceptance_p99_ms": pct([x.seconds for x in r.accepted], 0.99),
        "trivial_p99_ms": pct([x.seconds for x in r.trivial.replies], 0.99),
        "refusal_p99_ms": pct([x.seconds for x in r.refused_only], 0.99),
        "status_503": sum(1 for x in r.sale.replies if x.status == 503),
        "codes": codes,
        "accepted": len(r.accepted),
        "sold": r.sold,
        "sale_wall_s": r.sale.wall,
        "last_acceptance_s": last_win - r.sale.started,
        "settled_polled_s": r.settled_after,
        "last_awaiting_payment_s": r.last_awaiting_after,
        "first_saga_started_s": r.first_saga_after,
        "last_saga_started_s": r.last_saga_after,
        "sagas_in_sale": r.sagas_in_sale,
        "answered_first_seconds": r.answered_per_second(6),
        "sql_per_refusal": r.sql_per_refusal,
        "sql_per_acceptance": r.sql_per_acceptance,
        "cpu_cores": {
            phase: {
                **{k: v / result.wall for k, v in r.cpu[phase].seconds.items()},
                "idle": r.cpu[phase].idle / result.wall,
            }
            for phase, result in (("trivial", r.trivial), ("sale", r.sale), ("refusals", r.refusals))
        },
    }


def main() -> None:
    service = load_settings({"ORDERSAGA_ENV": "development"})  # the service's defaults
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--attempts", type=int, default=20000)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="fresh sales, each beside its own trivial run")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--api-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--saga-workers", type=int, default=2, help="celery worker processes for the sagas")
    parser.add_argument(
        "--saga-nice",
        type=int,
        default=service.worker_nice,
        help="ORDERSAGA_WORKER_NICE of the saga workers (default: the service's; 0: as the API)",
    )
    parser.add_argument(
        "--saga-rate",
        type=int,
        default=service.flash_sagas_per_second,
        help="ORDERSAGA_FLASH_SAGAS_PER_SECOND: the pace of the winners' sagas (default: the service's)",
    )
    parser.add_argument("--json", help="also write each round's figures to this file, as JSON")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    settings = sale_settings(args.saga_rate)
    stack = Stack(args.postgres, GUNICORN_THREADS=str(args.api_threads), **settings)
    try:
        stack.processes["api"] = gunicorn(
            stack.env, stack.workdir, stack.port, workers=args.api_workers
        ).start()
        wait_until(stack._ready, timeout=60, what="the API")
        worker_env = {**stack.env, "ORDERSAGA_WORKER_NICE": str(args.saga_nice)}
        worker = celery_worker(worker_env, stack.workdir, concurrency=args.saga_workers)
        stack.processes["worker"] = worker.start()
        stack.start_beat()
        print(f"setting up: {args.buyers} buyers ...", flush=True)
        with ThreadPoolExecutor(max_workers=16) as pool:
            tokens = [buyer["token"] for buyer in pool.map(lambda _: stack.user(), range(args.buyers))]
        healthz = request_bytes("GET", "/healthz", f"127.0.0.1:{stack.port}")
        blast("127.0.0.1", stack.port, [healthz] * 2000, args.connections)  # warm-up
        rounds = []
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds} ...", flush=True)
            rounds.append(one_round(stack, args, tokens))
        report(rounds, args)
    except AssertionError:
        print(stack.sql("SELECT status, count(*) FROM orders GROUP BY status"))
        print(stack.sql("SELECT status, count(*) FROM sagas GROUP BY status"))
        raise
    finally:
        stack.close()


if __name__ == "__main__":
    main()
