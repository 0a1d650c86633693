"""Refusals alone, in a steady state: the flash sale's p99 aim, measured where it is decided.

    .venv/bin/python -m bench.refusals [--rounds 3] [--requests 12000] [--connections 64]
                                       [--api-workers N] [--api-threads N] [--no-sagas]

A sale of one unit is sold, and then every attempt is refused (sold-out, limit-exceeded) from
Redis alone. Each round sends `--requests` refusals and as many requests to the trivial endpoint
(`/healthz`), over `--connections` keep-alive connections (bench/load.py's client), and prints
for each: requests per second, latency p50/p90/p99/max, and the spread of the connections' own
median latencies. A spread in two groups means the two gunicorn workers served their clients at
different speeds. The celery worker and beat run beside the API, as in a sale, unless
`--no-sagas`.

It also prints what a full garbage collection costs a process that holds the app, before and
after `gc.freeze()` (gunicorn.conf.py's `post_worker_init`).

The phases are longer than bench/flash_sale.py's refusals-only phase (4,000 requests), so the
first requests on new connections weigh less, and a run takes under a minute.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from app.config import load_settings
from bench.flash_sale import open_sale, pct, sale_settings
from bench.load import Result, blast, request_bytes
from tests.support.api import ADMIN, bearer
from tests.support.processes import celery_worker, gunicorn, wait_until
from tests.support.stack import Stack


def show(name: str, result: Result) -> str:
    seconds = [reply.seconds for reply in result.replies]
    per_connection: dict[int, list[float]] = {}
    for reply in result.replies:
        per_connection.setdefault(reply.connection, []).append(reply.seconds)
    medians = sorted(statistics.median(v) * 1000 for v in per_connection.values())
    quarter = len(medians) // 4
    return (
        f"  {name:<9} {result.per_second:6.0f}/s  p50 {pct(seconds, 0.5):5.1f}"
        f"  p90 {pct(seconds, 0.9):5.1f}  p99 {pct(seconds, 0.99):5.1f}  max {pct(seconds, 1.0):5.0f} ms;"
        "  connections' medians"
        f" {medians[0]:.1f} / {medians[quarter]:.1f} / {medians[-quarter - 1]:.1f} / {medians[-1]:.1f} ms"
        " (min / q1 / q3 / max)"
    )


def full_collection_ms(stack: Stack) -> tuple[int, float, float]:
    """Objects a process holds once the app is built, and a full collection's time before and
    after gc.freeze() (an idle process: under load a collection takes longer)."""
    env = dict(stack.env)
    metrics_dir = stack.workdir / "bench-metrics"  # this process's own, not the API's
    metrics_dir.mkdir(exist_ok=True)
    os.environ.update(env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    from app.web import create_app  # after PROMETHEUS_MULTIPROC_DIR: the metrics read it on load

    app = create_app(load_settings(env))
    gc.collect()
    objects = len(gc.get_objects())
    started = time.perf_counter()
    gc.collect()
    before = time.perf_counter() - started
    gc.freeze()
    started = time.perf_counter()
    gc.collect()
    after = time.perf_counter() - started
    gc.unfreeze()
    del app
    return objects, before * 1000, after * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=12000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--api-threads", type=int, default=4)
    parser.add_argument("--no-sagas", action="store_true", help="no celery worker or beat beside the API")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    service = load_settings({"ORDERSAGA_ENV": "development"})  # the service's defaults
    settings = sale_settings(service.flash_sagas_per_second)
    stack = Stack(args.postgres, GUNICORN_THREADS=str(args.api_threads), **settings)
    try:
        stack.processes["api"] = gunicorn(
            stack.env, stack.workdir, stack.port, workers=args.api_workers
        ).start()
        wait_until(stack._ready, timeout=60, what="the API")
        if not args.no_sagas:
            stack.processes["worker"] = celery_worker(stack.env, stack.workdir, concurrency=2).start()
            stack.start_beat()
        with ThreadPoolExecutor(max_workers=16) as pool:
            tokens = [buyer["token"] for buyer in pool.map(lambda _: stack.user(), range(200))]
        goods = stack.goods(stock=1)
        sale = stack.ok("POST", "/api/v1/flash-sales", json=open_sale(goods["id"], 1), headers=ADMIN)
        here = f"127.0.0.1:{stack.port}"
        path = f"/api/v1/flash-sales/{sale['id']}/purchase"
        body = json.dumps({"quantity": 1}).encode()
        refusals = [
            request_bytes("POST", path, here, body, tokens[i % len(tokens)]) for i in range(args.requests)
        ]
        trivial = [request_bytes("GET", "/healthz", here)] * args.requests
        sold = stack.call("POST", path, json={"quantity": 1}, headers=bearer(tokens[0]))
        assert sold.status_code == 202, sold.text  # from now on every attempt is refused
        blast("127.0.0.1", stack.port, trivial[:3000], args.connections)  # warm-up
        objects, before, after = full_collection_ms(stack)
        beside = "no sagas" if args.no_sagas else "celery worker and beat"
        print(
            f"refusals: {args.requests} per round over {args.connections} connections,"
            f" {args.api_workers} gunicorn workers x {args.api_threads} threads, {beside} beside them"
        )
        print(
            f"  a process holding the app: {objects} objects;"
            f" a full collection {before:.1f} ms, after gc.freeze() {after:.1f} ms"
        )
        for number in range(1, args.rounds + 1):
            print(f"round {number}")
            for name, requests in (("trivial", trivial), ("refusals", refusals)):
                print(show(name, blast("127.0.0.1", stack.port, requests, args.connections)), flush=True)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
