"""Flash sale under load, on the real stack (gunicorn, celery workers, PostgreSQL, Redis).

N buyers send M purchase attempts for a sale of Q units over C keep-alive connections. Printed:
accepted, rejected by reason, oversold units (must be 0), purchase requests per second, p50/p99
latency of rejections and of acceptances, SQL statements per rejected request (from the
service's own per-endpoint statement counter), and, measured in the same run with the same
client and server settings, the requests per second of a trivial JSON endpoint (`/healthz`), so
the gate's cost reads as a ratio.

    .venv/bin/python -m bench.flash_sale [--buyers 2000] [--attempts 20000] [--units 500]
                                         [--connections 64] [--api-workers 2]

The client runs in 2 processes of C/2 threads each (on the same two cores as the server, as
the figures in docs/benchmarks.md say).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tests.support.api import ADMIN
from tests.support.stack import Stack

PURCHASE_SOURCE = "flash_sales.purchase"
CODE = re.compile(rb'"code":\s*"([a-z-]+)"')


@dataclass(frozen=True)
class Job:
    host: str
    port: int
    method: str
    paths: list[str]
    tokens: list[str]
    body: bytes | None


def _worker(job: Job, connections: int, results: Any) -> None:
    """One client process: `connections` threads, each with its own keep-alive connection."""
    out: list[tuple[int, str, float]] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        connection = http.client.HTTPConnection(job.host, job.port, timeout=30)
        mine: list[tuple[int, str, float]] = []
        for index in range(offset, len(job.paths), connections):
            headers = {"Content-Type": "application/json"}
            if job.tokens:
                headers["Authorization"] = f"Bearer {job.tokens[index % len(job.tokens)]}"
            started = time.perf_counter()
            connection.request(job.method, job.paths[index], body=job.body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            took = time.perf_counter() - started
            # A cheap byte search, not json.loads: the client's own cost per response must not
            # differ between the trivial endpoint and the purchases it is compared with.
            found = CODE.search(payload) if response.status >= 300 else None
            if response.status < 300:
                code = "accepted"
            else:
                code = found.group(1).decode() if found else str(response.status)
            mine.append((response.status, code, took))
        connection.close()
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(out)


def blast(job: Job, connections: int, processes: int = 2) -> tuple[list[tuple[int, str, float]], float]:
    """Send every request of `job`, split across processes; returns the results and the wall time."""
    queue: Any = multiprocessing.Queue()
    per_process = max(1, connections // processes)
    shares = [
        Job(
            job.host,
            job.port,
            job.method,
            job.paths[i::processes],
            job.tokens[i::processes] or job.tokens,
            job.body,
        )
        for i in range(processes)
    ]
    started = time.perf_counter()
    workers = [multiprocessing.Process(target=_worker, args=(share, per_process, queue)) for share in shares]
    for worker in workers:
        worker.start()
    results: list[tuple[int, str, float]] = []
    for _ in workers:
        results.extend(queue.get())
    for worker in workers:
        worker.join()
    return results, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def latencies(name: str, rows: list[tuple[int, str, float]]) -> str:
    values = [row[2] for row in rows]
    return (
        f"  {name:<14} p50 {pct(values, 0.50):7.1f} ms   p99 {pct(values, 0.99):7.1f} ms   (n={len(values)})"
    )


def sql_statements(stack: Stack, source: str) -> float:
    text = stack.call("GET", "/metrics").text
    match = re.search(rf'^ordersaga_sql_statements_total{{source="{re.escape(source)}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--attempts", type=int, default=20000)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--saga-workers", type=int, default=2, help="celery worker processes for the sagas")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    stack = Stack(args.postgres, ORDERSAGA_FLASH_RATE_PER_SECOND="1000", GUNICORN_THREADS="8")
    try:
        from tests.support.processes import gunicorn

        stack.processes["api"] = gunicorn(
            stack.env, stack.workdir, stack.port, workers=args.api_workers
        ).start()
        from tests.support.processes import wait_until

        wait_until(stack._ready, timeout=60, what="the API")
        stack.start_worker(concurrency=args.saga_workers)
        stack.start_beat()
        print(f"setting up: {args.buyers} buyers, a sale of {args.units} units ...", flush=True)
        with ThreadPoolExecutor(max_workers=16) as pool:
            buyers = list(pool.map(lambda _: stack.user(), range(args.buyers)))
        goods = stack.goods(stock=args.units)
        now = datetime.now(UTC)
        sale = stack.ok(
            "POST",
            "/api/v1/flash-sales",
            json={
                "goods_id": goods["id"],
                "price_cents": 100,
                "quantity": args.units,
                "per_user_limit": 1,
                "starts_at": (now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ends_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            headers=ADMIN,
        )
        host, port = urlsplit(stack.base_url).hostname or "127.0.0.1", stack.port

        # The same client, the same server, a trivial JSON endpoint: the reference.
        blast(Job(host, port, "GET", ["/healthz"] * 2000, [], None), args.connections)  # warm-up
        trivial, trivial_wall = blast(
            Job(host, port, "GET", ["/healthz"] * args.attempts, [], None), args.connections
        )

        tokens = [b["token"] for b in buyers]
        purchase = f"/api/v1/flash-sales/{sale['id']}/purchase"
        body = json.dumps({"quantity": 1}).encode()
        sql_before = sql_statements(stack, PURCHASE_SOURCE)
        results, wall = blast(
            Job(host, port, "POST", [purchase] * args.attempts, tokens, body), args.connections
        )
        sql_after_sale = sql_statements(stack, PURCHASE_SOURCE)

        # Only refusals now (the sale is sold out): every statement here would be a refusal's.
        refusals, refusals_wall = blast(
            Job(host, port, "POST", [purchase] * 4000, tokens, body), args.connections
        )
        sql_after_refusals = sql_statements(stack, PURCHASE_SOURCE)
        refused_only = [r for r in refusals if r[0] >= 300]

        accepted = [r for r in results if r[1] == "accepted"]
        rejected = [r for r in results if r[1] != "accepted"]
        by_reason: dict[str, int] = {}
        for _, code, _ in rejected:
            by_reason[code] = by_reason.get(code, 0) + 1
        sold = stack.sql(
            "SELECT coalesce(sum(i.quantity), 0) AS n FROM order_items i JOIN orders o ON o.id = i.order_id "
            "WHERE o.flash_sale_id = :id AND o.status NOT IN ('CANCELLED', 'REFUNDED')",
            id=sale["id"],
        )[0].n
        purchase_rps = len(results) / wall
        trivial_rps = len(trivial) / trivial_wall
        refusal_rps = len(refusals) / refusals_wall
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items()))

        print(
            f"\nflash sale: {args.attempts} attempts by {args.buyers} buyers for {args.units} units, "
            f"{args.connections} keep-alive connections, {args.api_workers} gunicorn workers, "
            f"{args.saga_workers} saga worker processes"
        )
        print(f"  accepted                {len(accepted)}")
        print(f"  rejected                {len(rejected)}  ({reasons})")
        print(f"  oversold units          {max(0, int(sold) - args.units)}  (units in live orders: {sold})")
        print(f"  purchase requests/s     {purchase_rps:8.0f}   (the sale: winners' sagas run meanwhile)")
        print(f"  refusals only req/s     {refusal_rps:8.0f}   (the sale sold out, its sagas done)")
        print(f"  trivial /healthz req/s  {trivial_rps:8.0f}   (same client, same server, same run)")
        print(f"  ratio purchase/trivial  {purchase_rps / trivial_rps:8.2f}")
        print(f"  ratio refusals/trivial  {refusal_rps / trivial_rps:8.2f}")
        print(latencies("rejections", rejected))
        print(latencies("acceptances", accepted))
        print(latencies("refusals only", refused_only))
        print(latencies("trivial", trivial))
        per_refusal = (sql_after_refusals - sql_after_sale) / max(1, len(refused_only))
        per_sale_request = (sql_after_sale - sql_before) / max(1, len(accepted))
        print(f"  SQL statements per rejected request: {per_refusal:.3f} (over {len(refused_only)} refusals)")
        print(
            f"  SQL statements per accepted order:   {per_sale_request:.1f} (all the sale's requests counted)"
        )
    finally:
        stack.close()


if __name__ == "__main__":
    main()
