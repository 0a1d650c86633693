"""Figure 5 of `make bench`, growth: figures 1 and 2 as the database grows, and one worker with
100,000 orders awaiting payment at once.

    .venv/bin/python -m bench.growth [--sizes 10000,1000000] [--awaiting 100000] [--rounds 3]
                                     [--orders 1200] [--connections 32] [--concurrency 2]

On bench/everyday.py's stack and timings (a sweep a minute, 15 minutes to pay):
1. After one small round that is not counted, figures 1 and 2 (bench/everyday.py's rounds) on
   the near-empty database: the baseline. Then confirmed orders are loaded in bulk
   (bench/bulk.py) until the database holds each of `--sizes` orders, and the same rounds run
   again. Each size's tables, then its medians over the baseline's: each endpoint's req/s and
   each drain's orders/s as measured, and as a ratio to /healthz and to the no-op chains in
   the same rounds, which takes out the machine's own drift from one size to the next. The
   issue's bar is 20% either way. Beside them: one sweep's runtime at each size (the sweep's
   queries are the ones that read across orders) and the database's size.
2. `--awaiting` orders awaiting payment at once (bench/awaiting.py): the worker's memory and
   the ETA tasks it holds, how long a restart takes to consume again, and that no timeout is
   lost across it.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from app.config import load_settings
from bench import awaiting
from bench.bulk import Loader
from bench.everyday import (
    DRAINS,
    ENDPOINTS,
    Shop,
    add_stack_arguments,
    on_postgres,
    one_round,
    open_shop,
    report_rounds,
    rounds_of,
    start_stack,
)

BAR = 0.20  # the issue's: the growth runs differ by less than this
SCRAPES = 5


@dataclass
class Size:
    """One size of the database and its rounds."""

    orders: int  # in the database when the rounds began
    load_seconds: float
    settle_seconds: float
    database_mb: float
    sweep_seconds: float
    scrape_seconds: float  # one GET /metrics, the median of SCRAPES
    rounds: list[dict[str, Any]]


def sizes(value: str) -> list[int]:
    return [int(size.replace("_", "")) for size in value.split(",") if size.strip()]


def main() -> None:
    # SIGTERM (a CI's timeout, a kill) ends the run through its `finally`, which stops the stack.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stack_arguments(parser)
    parser.add_argument("--sizes", type=sizes, default=[10_000, 1_000_000], help="orders, comma-separated")
    parser.add_argument("--awaiting", type=int, default=100_000, help="orders awaiting payment (0: none)")
    on_postgres(parser.parse_args(), run)


def run(postgres_url: str, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    stack = start_stack(postgres_url, args.concurrency)
    loader: Loader | None = None
    try:
        shop = open_shop(stack, args)
        warm_up(shop, args)
        timeout_ms = load_settings(stack.env).payment_timeout_seconds * 1000
        loader = Loader(stack, [buyer["id"] for buyer in shop.buyers], timeout_ms)
        measured = [measure_size(shop, loader, None, args)]
        for size in args.sizes:
            measured.append(measure_size(shop, loader, size, args))
        held = None
        if args.awaiting:
            print(f"{args.awaiting:,} orders awaiting payment ...", flush=True)
            held = awaiting.measure(shop, loader, args.awaiting, args.concurrency)
        report(measured, args)
        if held is not None:
            awaiting.report(held, args.concurrency)
        print(f"\nthe whole run took {(time.perf_counter() - started) / 60:.1f} minutes")
    finally:
        if loader is not None:
            loader.close()
        stack.close()


def warm_up(shop: Shop, args: argparse.Namespace) -> None:
    """One small round, not counted: the baseline's first round would otherwise pay for the
    worker's and the API's first requests (imports, connections, caches), and every later size
    would look faster than it."""
    print("warming up ...", flush=True)
    one_round(shop, argparse.Namespace(**{**vars(args), "orders": min(200, args.orders)}))


def orders_in(shop: Shop) -> int:
    return int(shop.sql("SELECT count(*) FROM orders")[0][0])


def measure_size(shop: Shop, loader: Loader, size: int | None, args: argparse.Namespace) -> Size:
    """Load confirmed orders until the database holds `size` (None: as it is), settle it, and
    run the rounds."""
    load_seconds = settle_seconds = 0.0
    if size is not None:
        print(f"loading confirmed orders up to {size:,} ...", flush=True)
        started = time.perf_counter()
        loader.confirmed(size - orders_in(shop), biggest=max(args.sizes))
        load_seconds = time.perf_counter() - started
        settle_seconds = loader.settle()
    orders = orders_in(shop)
    sweep_seconds, _ = awaiting.sweep(shop)
    scrape_seconds = scrape(shop)
    database_mb = shop.sql("SELECT pg_database_size(current_database())")[0][0] / 2**20
    rounds = rounds_of(shop, args, f" with {orders:,} orders in the database")
    return Size(orders, load_seconds, settle_seconds, database_mb, sweep_seconds, scrape_seconds, rounds)


def scrape(shop: Shop) -> float:
    """How long a Prometheus scrape takes: it counts the orders and the sagas by status."""
    took = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        answer = shop.stack.call("GET", "/metrics")
        took.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return statistics.median(took)


# -- the report --------------------------------------------------------------------------------


def medians(rounds: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per figure: the median as measured, and the median of its per-round ratio to its
    reference in the same round (/healthz for an endpoint, the no-op chains for a drain)."""
    figures = {}
    for name in ENDPOINTS:
        rates = [r[name].per_second for r in rounds]
        beside = [r[name].per_second / r["GET /healthz"].per_second for r in rounds]
        figures[f"{name} req/s"] = (statistics.median(rates), statistics.median(beside))
    for name, length in DRAINS:
        beside = [r[name] / r[f"{length} no-op tasks"] for r in rounds]
        figures[f"{name} orders/s"] = (statistics.median(r[name] for r in rounds), statistics.median(beside))
    return figures


def report(measured: list[Size], args: argparse.Namespace) -> None:
    for size in measured:
        report_rounds(size.rounds, args, heading=f"figure 5, {size.orders:,} orders in the database")
        loaded = f"loaded in {size.load_seconds:.0f} s, VACUUM ANALYZE {size.settle_seconds:.0f} s; " * bool(
            size.load_seconds
        )
        print(
            f"\n  {loaded}database {size.database_mb:,.0f} MB; one sweep took {size.sweep_seconds:.3f} s;"
            f" a /metrics scrape {size.scrape_seconds * 1000:.0f} ms (median of {SCRAPES})"
        )
    if len(measured) < 2 or not args.rounds:
        return
    base = medians(measured[0].rounds)
    print(
        f"\nfigure 5, growth: each size's medians over the baseline's ({measured[0].orders:,} orders),"
        f" as measured and beside /healthz or the no-op chains of the same rounds; ! beyond {BAR:.0%}\n"
    )
    print(f"  {'':<34}" + "".join(f"{f'{size.orders:,} orders':>26}" for size in measured[1:]))
    print(f"  {'':<34}" + f"{'as run':>13}{'beside':>13}" * (len(measured) - 1))
    worst = [0.0, 0.0]
    for name, (rate, beside) in base.items():
        cells = ""
        for size in measured[1:]:
            ratios = [
                value / reference
                for value, reference in zip(medians(size.rounds)[name], (rate, beside), strict=True)
            ]
            worst = [max(w, abs(r - 1)) for w, r in zip(worst, ratios, strict=True)]
            cells += "".join(f"{r:>11.2f}{' !' if abs(r - 1) > BAR else '  '}" for r in ratios)
        print(f"  {name:<34}{cells}")
    print(
        f"\n  furthest from the baseline: {worst[0]:.0%} as run, {worst[1]:.0%} beside the references"
        f" (the bar: {BAR:.0%})"
    )


if __name__ == "__main__":
    main()
