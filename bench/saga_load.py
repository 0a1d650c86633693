"""What a flash sale's sagas cost each kind of process, on the real stack (no load beside them).

    .venv/bin/python -m bench.saga_load [--orders 300] [--saga-rate 1000] [--window 12]

Buys `--orders` units of a sale one buyer at a time (8 at once), then waits until `--window`
seconds have passed since the first purchase, and prints the CPU seconds each kind of process used
in that window (bench/cpu.py) and how many orders reached AWAITING_PAYMENT. With the pace off
(the default, 1000 sagas/s) every saga runs in the window, so the workers' CPU over the orders is
a saga's cost. At `--saga-rate 1` almost none runs: what the workers used then is mostly the
releaser's ticks, while the first-step messages wait in the outbox.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from bench.cpu import by_kind, cpu_use
from bench.flash_sale import open_sale, sale_settings
from tests.support.api import ADMIN
from tests.support.processes import celery_worker, gunicorn, wait_until
from tests.support.stack import Stack


def settled(kinds: tuple[str, ...] = ("saga workers", "beat"), timeout: float = 60.0) -> None:
    """Wait until the workers and beat have finished starting up (their CPU stops rising), so
    that their start does not count as the sagas' cost."""

    def used() -> float:
        seconds = by_kind()
        return sum(seconds.get(kind, 0.0) for kind in kinds)

    deadline = time.monotonic() + timeout
    before = used()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = used()
        if now - before < 0.02:
            return
        before = now
    raise AssertionError(f"the workers and beat were still starting after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--saga-rate", type=int, default=1000, help="ORDERSAGA_FLASH_SAGAS_PER_SECOND")
    parser.add_argument("--window", type=float, default=12.0, help="seconds measured from the first purchase")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    stack = Stack(args.postgres, **sale_settings(args.saga_rate))
    try:
        stack.processes["api"] = gunicorn(stack.env, stack.workdir, stack.port, workers=2).start()
        wait_until(stack._ready, timeout=60, what="the API")
        stack.processes["worker"] = celery_worker(stack.env, stack.workdir, concurrency=2).start()
        stack.start_beat()
        with ThreadPoolExecutor(max_workers=16) as pool:
            tokens = [buyer["token"] for buyer in pool.map(lambda _: stack.user(), range(args.orders))]
        goods = stack.goods(stock=args.orders)
        body = open_sale(goods["id"], args.orders)
        sale = stack.ok("POST", "/api/v1/flash-sales", json=body, headers=ADMIN)
        path = f"/api/v1/flash-sales/{sale['id']}/purchase"
        settled()

        def buy(token: str) -> int:
            return int(stack.call("POST", path, token, json={"quantity": 1}).status_code)

        with cpu_use() as used:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                accepted = sum(code == 202 for code in pool.map(buy, tokens))
            bought_in = time.perf_counter() - started
            time.sleep(max(0.0, args.window - bought_in))
        awaiting = stack.sql(
            "SELECT count(*) AS n FROM orders WHERE flash_sale_id = :id AND status = 'AWAITING_PAYMENT'",
            id=sale["id"],
        )[0].n
        print(
            f"\npace {args.saga_rate}/s: {accepted} of {args.orders} purchases accepted "
            f"in {bought_in:.1f} s; "
            f"{awaiting} orders awaited payment after {args.window:.0f} s"
        )
        for kind, seconds in sorted(used.seconds.items(), key=lambda item: -item[1]):
            per_order = seconds / max(1, accepted) * 1000
            print(f"  {kind:<13} {seconds:6.2f} CPU s   {per_order:6.1f} ms per order")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
