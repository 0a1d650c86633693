"""Everyday orders beside the machine's own limits, on the real stack (gunicorn, one celery
worker, beat, PostgreSQL, Redis), everything side by side in one run.

    .venv/bin/python -m bench.everyday [--rounds 3] [--orders 1200] [--connections 32]
                                       [--counted 40] [--concurrency 2]

1. The endpoints at `--connections` keep-alive connections (bench/load.py's client), each round
   beside the trivial endpoint (`GET /healthz`) measured in the same round: `POST /orders`
   (`--orders` orders, one line, no coupon, no key), `GET /orders/{id}` and `GET /orders` (a
   page of 20) as their buyers, and the sandbox's signed `payment.succeeded` webhook, one per
   order. Requests per second, p50, p99, and the ratio to the trivial endpoint.
2. The saga drain: how fast the round's orders reach AWAITING_PAYMENT once placed, and
   CONFIRMED once their webhooks are in; each beside as many chains of no-op tasks as long as
   that part of the saga (tasks/ops.py's hop), through the same broker and worker.
3. Work per confirmed order, counted rather than timed so that it holds on a noisy machine:
   `--counted` orders placed one at a time, each confirmed by a webhook, and what they cost in
   SQL statements (the service's own count in /metrics), transactions (PostgreSQL's
   pg_stat_database: commits and rollbacks), Celery messages (outbox rows) and provider calls
   (the sandbox API's requests in the API's log).

Figures 1 and 2 are medians over the rounds, with the lowest and highest beside them, and with
the CPU milliseconds that the service's processes (read from /proc) spent per request or per
order: on a machine shared with others, that moves less than a rate does.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import text

from app.config import load_settings
from bench.cpu import cpu_use
from bench.flash_sale import pct
from bench.load import Result, blast, request_bytes
from scripts import servers
from tasks.celery_app import celery_config
from tasks.ops import HOP_TASK
from tests.support.processes import celery_worker, gunicorn, wait_until
from tests.support.stack import Stack
from tests.support.webhooks import signed

WEBHOOK = "/api/v1/payments/webhooks/sandbox"
# The order saga's messages: to AWAITING_PAYMENT reserve_stock, create_payment and
# await_payment (no coupon); from the webhook to CONFIRMED confirm_order and the points.
TO_AWAITING, TO_CONFIRMED = 3, 2
STATS_DELAY_SECONDS = 11.0
CALIBRATION_QUERIES = 200  # the bench's own queries, run alone to learn what each costs
DEFAULT_TIMINGS = {
    "ORDERSAGA_SWEEP_INTERVAL_SECONDS": "60",
    "ORDERSAGA_SAGA_STALE_SECONDS": "120",
    "ORDERSAGA_STEP_MAX_RETRIES": "5",
    "ORDERSAGA_STEP_RETRY_BACKOFF_SECONDS": "2",
}
BY_SOURCE = "SQL statements from "  # figure 3's statements, by the endpoint or task that made them
ENDPOINTS = ("GET /healthz", "POST /orders", "GET /orders/{id}", "GET /orders", "webhook")
DRAINS = (("drain to AWAITING_PAYMENT", TO_AWAITING), ("drain to CONFIRMED", TO_CONFIRMED))


class Shop:
    """The stack, its buyers, and one goods with stock for every order the bench places."""

    def __init__(self, stack: Stack, buyers: int) -> None:
        self.stack = stack
        self.host = f"127.0.0.1:{stack.port}"
        with ThreadPoolExecutor(max_workers=16) as pool:
            self.buyers = list(pool.map(lambda _: stack.user(), range(buyers)))
        self.token_of = {buyer["id"]: buyer["token"] for buyer in self.buyers}
        self.goods_id = stack.goods(stock=10**8, price_cents=1000)["id"]
        self.queries = 0  # the bench's own reads of the database: one transaction each
        self.sender = Celery("bench-sender")
        self.sender.config_from_object(celery_config(load_settings(stack.env)))
        self.stack_redis = redis.Redis.from_url(stack.redis.url)

    def sql(self, query: str, **params: Any) -> list[Any]:
        self.queries += 1
        return self.stack.sql(query, **params)

    def blast(self, requests: list[bytes], connections: int) -> Result:
        return blast("127.0.0.1", self.stack.port, requests, connections)

    def trivial(self, count: int) -> list[bytes]:
        return [request_bytes("GET", "/healthz", self.host)] * count

    def placing(self, count: int) -> list[bytes]:
        body = json.dumps({"items": [{"goods_id": self.goods_id, "quantity": 1}]}).encode()
        tokens = [buyer["token"] for buyer in self.buyers]
        return [
            request_bytes("POST", "/api/v1/orders", self.host, body, tokens[i % len(tokens)])
            for i in range(count)
        ]

    def reading(self, orders: list[tuple[str, str]]) -> list[bytes]:
        return [
            request_bytes("GET", f"/api/v1/orders/{order_id}", self.host, token=self.token_of[user_id])
            for order_id, user_id in orders
        ]

    def listing(self, orders: list[tuple[str, str]]) -> list[bytes]:
        return [
            request_bytes("GET", "/api/v1/orders?limit=20", self.host, token=self.token_of[user_id])
            for _, user_id in orders
        ]

    def paying(self, order_ids: list[str]) -> list[bytes]:
        rows = self.sql(
            "SELECT provider_payment_id, amount_cents FROM payments WHERE order_id = ANY(:ids)", ids=order_ids
        )
        requests = []
        for provider_id, amount in rows:
            event = {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": "payment.succeeded",
                "created": int(time.time()),
                "data": {"payment_id": provider_id, "amount_cents": amount, "currency": "CNY"},
            }
            raw, headers = signed(event)
            headers.pop("Content-Type")  # request_bytes sets it with the body
            requests.append(request_bytes("POST", WEBHOOK, self.host, raw, headers=headers))
        return requests

    def open_orders(self) -> list[tuple[str, str]]:
        rows = self.sql("SELECT id, user_id FROM orders WHERE status <> 'CONFIRMED'")
        return [(order_id, user_id) for order_id, user_id in rows]

    def chains(self, count: int, length: int) -> float:
        """Chains per second of `count` chains of `length` no-op tasks (tasks/ops.py's hop),
        sent at once through the same broker to the same worker as the sagas."""
        token = uuid.uuid4().hex
        started = time.perf_counter()
        for _ in range(count):
            self.sender.send_task(HOP_TASK, args=(token, length, "orders"), queue="orders")

        def done() -> bool:
            return int(self.stack_redis.get(f"ordersaga:hops:{token}") or 0) >= count

        wait_until(done, timeout=900, interval=0.05, what=f"{count} chains of {length} tasks")
        return count / (time.perf_counter() - started)

    def drain(self, order_ids: list[str], status: str) -> float:
        """Orders per second until every one of `order_ids` is in `status` (polled every 0.1 s)."""
        started = time.perf_counter()

        def done() -> bool:
            query = "SELECT count(*) FROM orders WHERE id = ANY(:ids) AND status = :status"
            return bool(self.sql(query, ids=order_ids, status=status)[0][0] == len(order_ids))

        wait_until(done, timeout=900, interval=0.1, what=f"{len(order_ids)} orders to be {status}")
        return len(order_ids) / (time.perf_counter() - started)


def expect(result: Result, status: int, what: str) -> Result:
    wrong = {reply.code for reply in result.replies if reply.status != status}
    assert not wrong, f"{what}: answers other than {status}: {wrong}"
    return result


# What a phase's CPU is counted from: never the bench's load, nor what else the machine runs. A
# request's is the API's, PostgreSQL's and Redis's (the sagas of the orders being placed run in
# the workers meanwhile); a drain's, every process of the service.
SERVING = ("api", "postgres", "redis")
SERVICE = (*SERVING, "saga workers", "beat")


def one_round(shop: Shop, args: argparse.Namespace) -> dict[str, Any]:
    """Each phase beside its own trivial run; the saga drains between them, so that each phase
    is measured with the workers quiet. Each phase also records the CPU the service spent on
    it, which another tenant of the machine moves less than a rate."""
    figures: dict[str, Any] = {}

    def phase(name: str, count: int, run: Callable[[], Any], kinds: tuple[str, ...] = SERVING) -> Any:
        with cpu_use() as used:
            figures[name] = run()
        figures[f"{name} CPU"] = used
        figures[f"{name} CPU ms"] = 1000 * sum(used.seconds.get(kind, 0.0) for kind in kinds) / count
        return figures[name]

    phase("GET /healthz", args.orders, lambda: shop.blast(shop.trivial(args.orders), args.connections))
    placed = phase(
        "POST /orders", args.orders, lambda: shop.blast(shop.placing(args.orders), args.connections)
    )
    expect(placed, 202, "orders")
    orders = shop.open_orders()
    order_ids = [order_id for order_id, _ in orders]
    count = len(order_ids)
    phase("drain to AWAITING_PAYMENT", count, lambda: shop.drain(order_ids, "AWAITING_PAYMENT"), SERVICE)
    phase(f"{TO_AWAITING} no-op tasks", count, lambda: shop.chains(count, TO_AWAITING), SERVICE)
    reads = phase("GET /orders/{id}", count, lambda: shop.blast(shop.reading(orders), args.connections))
    expect(reads, 200, "reads")
    pages = phase("GET /orders", count, lambda: shop.blast(shop.listing(orders), args.connections))
    expect(pages, 200, "pages")
    paid = phase("webhook", count, lambda: shop.blast(shop.paying(order_ids), args.connections))
    expect(paid, 200, "webhooks")
    phase("drain to CONFIRMED", count, lambda: shop.drain(order_ids, "CONFIRMED"), SERVICE)
    phase(f"{TO_CONFIRMED} no-op tasks", count, lambda: shop.chains(count, TO_CONFIRMED), SERVICE)
    return figures


# -- figure 3: work per confirmed order -------------------------------------------------------


def counters(shop: Shop) -> dict[str, float]:
    """Running totals; figure 3 is their difference over the counted orders."""
    stack = shop.stack
    # PostgreSQL publishes a backend's transaction counts at most once a second, and an idle
    # one's (a pooled connection's) within 10 s: wait for both.
    time.sleep(STATS_DELAY_SECONDS)
    with stack.db.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        commits, rollbacks = connection.execute(
            text("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        ).one()
        messages = connection.execute(text("SELECT count(*) FROM outbox_messages")).scalar_one()
    metrics = stack.call("GET", "/metrics").text
    statements = re.findall(r'^ordersaga_sql_statements_total\{source="([^"]*)"\} (\S+)$', metrics, re.M)
    by_source = {f"{BY_SOURCE}{source}": float(value) for source, value in statements}
    return {
        "SQL statements": sum(by_source.values()),
        **by_source,
        "transactions": commits + rollbacks,
        "  of them rollbacks": rollbacks,
        "Celery messages": messages,
        "provider calls": len(re.findall(r" /sandbox/api/payments", stack.processes["api"].log())),
    }


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def work_per_order(shop: Shop, count: int) -> dict[str, float]:
    """What `count` orders cost, less what measuring costs: reading the counters (read twice
    with nothing between) and the bench's own queries (as many run with nothing else)."""
    before = counters(shop)
    reading = difference(counters(shop), before)
    start = counters(shop)
    for _ in range(CALIBRATION_QUERIES):
        shop.sql("SELECT 1")
    per_query = {
        name: value / CALIBRATION_QUERIES
        for name, value in difference(difference(counters(shop), start), reading).items()
    }
    start, queries = counters(shop), shop.queries
    buyer = shop.buyers[0]
    body = {"items": [{"goods_id": shop.goods_id, "quantity": 1}]}
    for _ in range(count):
        order = shop.stack.ok("POST", "/api/v1/orders", buyer["token"], json=body)
        shop.drain([order["id"]], "AWAITING_PAYMENT")
        [request] = shop.paying([order["id"]])
        head, _, raw = request.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
        answer = shop.stack.http.post(shop.stack.url(WEBHOOK), data=raw, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        shop.drain([order["id"]], "CONFIRMED")
    own = shop.queries - queries
    used = difference(difference(counters(shop), start), reading)
    return {name: (value - own * per_query.get(name, 0.0)) / count for name, value in used.items()}


# -- the report --------------------------------------------------------------------------------


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def report_rounds(
    rounds: list[dict[str, Any]], args: argparse.Namespace, heading: str = "everyday orders"
) -> None:
    """Figures 1 and 2: medians [lowest-highest] over the rounds (bench/growth.py prints them for
    each size of the database, under its own heading)."""
    print(
        f"\n{heading}: {len(rounds)} rounds of {args.orders} orders, {args.connections} keep-alive "
        f"connections; gunicorn -w 2, one celery worker --concurrency {args.concurrency}, beat; "
        "median [lowest-highest] over the rounds\n"
    )
    print(
        f"  {'endpoint':<18} {'req/s':>16} {'p50 ms':>16} {'p99 ms':>18} {'ratio to /healthz':>20}"
        f" {'CPU ms/req':>16}"
    )
    for name in ENDPOINTS if rounds else ():
        per_second = [r[name].per_second for r in rounds]
        p50 = [pct([x.seconds for x in r[name].replies], 0.5) for r in rounds]
        p99 = [pct([x.seconds for x in r[name].replies], 0.99) for r in rounds]
        ratio = [r[name].per_second / r["GET /healthz"].per_second for r in rounds]
        cpu = [r[f"{name} CPU ms"] for r in rounds]
        print(
            f"  {name:<18} {spread(per_second):>16} {spread(p50, '{:.1f}'):>16} {spread(p99, '{:.1f}'):>18}"
            f" {spread(ratio, '{:.2f}'):>20} {spread(cpu, '{:.2f}'):>16}"
        )
    for number, figures in enumerate(rounds, 1):
        post = figures["POST /orders"]
        print(f"  round {number}, cores during POST /orders: {figures['POST /orders CPU'].shares(post.wall)}")
    print()
    for name, length in DRAINS if rounds else ():
        chain = f"{length} no-op tasks"
        ratio = [r[name] / r[chain] for r in rounds]
        print(
            f"  {name:<26} {spread([r[name] for r in rounds])} orders/s;"
            f" a chain of {chain}: {spread([r[chain] for r in rounds])} chains/s;"
            f" ratio {spread(ratio, '{:.2f}')}"
        )
        cost, chain_cost = [r[f"{name} CPU ms"] for r in rounds], [r[f"{chain} CPU ms"] for r in rounds]
        print(
            f"  {'':<26} CPU ms per order {spread(cost, '{:.1f}')}, per chain {spread(chain_cost, '{:.1f}')}"
        )


def report(rounds: list[dict[str, Any]], work: dict[str, float], args: argparse.Namespace) -> None:
    report_rounds(rounds, args)
    if not work:
        return
    print(f"\n  work per confirmed order ({args.counted} orders, one at a time, confirmed by webhook):")
    for name, value in work.items():
        if not name.startswith(BY_SOURCE):
            print(f"    {name:<16} {value:6.1f}")
        if name == "SQL statements":
            sources = sorted((v, n) for n, v in work.items() if n.startswith(BY_SOURCE) and round(v, 1))
            for count, source in reversed(sources):
                print(f"      {count:5.1f} from {source.removeprefix(BY_SOURCE)}")


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the stack and of figures 1 and 2, shared with bench/growth.py."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--orders", type=int, default=1200, help="orders per round")
    parser.add_argument("--connections", type=int, default=32)
    stack_arguments(parser)


def stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The stack's own options, shared with bench/connections.py so that both measure one stack."""
    parser.add_argument("--concurrency", type=int, default=2, help="the celery worker's processes")
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument(
        "--postgres",
        help="a PostgreSQL server's URL (default: the local one on 5432 if it answers, else a "
        "throwaway one, as the tests start, with fsync off)",
    )


def on_postgres(args: argparse.Namespace, run: Callable[[str, argparse.Namespace], None]) -> None:
    """Run `run` on the PostgreSQL server `--postgres` names, or on one started for the run."""
    with tempfile.TemporaryDirectory(prefix="ordersaga-bench-") as workdir:
        postgres = servers.ensure_postgres(args.postgres, Path(workdir))
        try:
            run(postgres.url, args)
        finally:
            postgres.stop()


@contextmanager
def shop_on_stack(args: argparse.Namespace, **env: str) -> Iterator[Shop]:
    """The stack and its Shop, torn down afterwards, for a bench that brings its own rounds
    (bench/connections.py). `env` is added to the default timings."""
    with tempfile.TemporaryDirectory(prefix="ordersaga-bench-") as workdir:
        postgres = servers.ensure_postgres(args.postgres, Path(workdir))
        try:
            stack = start_stack(postgres.url, args.concurrency, **env)
            try:
                print(f"setting up {args.buyers} buyers ...", flush=True)
                yield Shop(stack, args.buyers)
            finally:
                stack.close()
        finally:
            postgres.stop()


def start_stack(postgres_url: str, concurrency: int, **env: str) -> Stack:
    """The stack every figure runs on: gunicorn -w 2, one celery worker, beat."""
    # The service's own timings, not the tests' fast ones: a sweep every second would add its
    # transactions to every order's count.
    stack = Stack(postgres_url, **{**DEFAULT_TIMINGS, **env})
    try:
        stack.processes["api"] = gunicorn(stack.env, stack.workdir, stack.port, workers=2).start()
        wait_until(stack._ready, timeout=60, what="the API")
        stack.processes["worker"] = celery_worker(stack.env, stack.workdir, concurrency=concurrency).start()
        stack.start_beat()
    except BaseException:
        stack.close()
        raise
    return stack


def open_shop(stack: Stack, args: argparse.Namespace) -> Shop:
    print(f"setting up {args.buyers} buyers ...", flush=True)
    shop = Shop(stack, args.buyers)
    shop.blast(shop.trivial(2000), args.connections)  # warm-up
    return shop


def rounds_of(shop: Shop, args: argparse.Namespace, what: str = "") -> list[dict[str, Any]]:
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number} of {args.rounds}{what} ...", flush=True)
        rounds.append(one_round(shop, args))
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stack_arguments(parser)
    parser.add_argument("--counted", type=int, default=40, help="orders for figure 3")
    on_postgres(parser.parse_args(), run)


def run(postgres_url: str, args: argparse.Namespace) -> None:
    stack = start_stack(postgres_url, args.concurrency)
    try:
        shop = open_shop(stack, args)
        rounds = rounds_of(shop, args)
        work = {}
        if args.counted:  # --counted 0 leaves figure 3 out
            print("counting the work of one order ...", flush=True)
            work = work_per_order(shop, args.counted)
        report(rounds, work, args)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
