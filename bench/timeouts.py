"""How late payment timeouts land, with their ETA tasks and with them lost (the sweep alone).

    .venv/bin/python -m bench.timeouts [--orders 1000] [--timeout 75] [--sweep 5]

On the real stack (bench/everyday.py's), with `--timeout` seconds to pay and a sweep every
`--sweep` seconds. A timeout longer than the horizon (two sweeps, a minute at least) is queued by
the sweep as its deadline comes near, not on entering AWAITING_PAYMENT: this measures that path.

1. `--orders` orders are placed at once and never paid; each cancellation is timed from its
   deadline to the end of its `await_payment` step (p50, p99, max).
2. The same again, but once their ETA tasks are queued the worker is stopped and the tasks are
   taken out of the broker, as a broker that lost them would: the sweep's backstop cancels them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import redis

from bench.everyday import Shop
from bench.flash_sale import pct
from scripts import servers
from tests.support.processes import wait_until
from tests.support.stack import Stack

TIMEOUT_TASK = b"payments.payment_timeout"


def lateness(shop: Shop, order_ids: list[str]) -> list[float]:
    """Seconds from each order's deadline to the end of its wait for payment."""
    rows = shop.sql(
        "SELECT extract(epoch FROM s.finished_at - o.payment_deadline) FROM orders o"
        " JOIN sagas g ON g.subject_id = o.id JOIN saga_steps s ON s.saga_id = g.id"
        " WHERE o.id = ANY(:ids) AND s.name = 'await_payment' AND s.kind = 'action'",
        ids=order_ids,
    )
    return [float(late) for (late,) in rows]


def awaiting(shop: Shop, count: int, connections: int = 16) -> list[str]:
    before = {order_id for order_id, _ in shop.open_orders()}
    shop.blast(shop.placing(count), connections)
    order_ids = [order_id for order_id, _ in shop.open_orders() if order_id not in before]
    shop.drain(order_ids, "AWAITING_PAYMENT")
    return order_ids


def cancelled(shop: Shop, order_ids: list[str], within: float) -> list[float]:
    def done() -> bool:
        query = "SELECT count(*) FROM orders WHERE id = ANY(:ids) AND status = 'CANCELLED'"
        return bool(shop.sql(query, ids=order_ids)[0][0] == len(order_ids))

    wait_until(done, timeout=within, interval=0.5, what=f"{len(order_ids)} orders to be cancelled")
    return lateness(shop, order_ids)


def lose_eta_tasks(shop: Shop, order_ids: list[str]) -> int:
    """Once the sweep has queued their ETA tasks, stop the worker and take them out of the
    broker (a warm shutdown hands the ETA tasks it held back to the broker first)."""
    stack = shop.stack

    def queued() -> bool:
        query = "SELECT count(*) FROM orders WHERE id = ANY(:ids) AND timeout_queued_at IS NOT NULL"
        return bool(shop.sql(query, ids=order_ids)[0][0] == len(order_ids))

    wait_until(queued, timeout=600, interval=0.5, what="the ETA tasks to be queued")
    time.sleep(2)  # the relay sends right after the sweep's commit
    stack.stop("worker")
    client = redis.Redis.from_url(stack.redis.url)
    removed = 0
    for message in client.lrange("payments", 0, -1):
        if TIMEOUT_TASK in message:
            removed += int(client.lrem("payments", 0, message))
    client.delete("unacked", "unacked_index")
    client.close()
    stack.start_worker(concurrency=2)
    return removed


def show(name: str, late: list[float]) -> None:
    print(
        f"  {name:<24} p50 {pct(late, 0.5):8.0f} ms   p99 {pct(late, 0.99):8.0f} ms"
        f"   max {max(late) * 1000:8.0f} ms   earliest {min(late) * 1000:6.0f} ms   (n={len(late)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--timeout", type=int, default=75, help="ORDERSAGA_PAYMENT_TIMEOUT_SECONDS")
    parser.add_argument("--sweep", type=int, default=5, help="ORDERSAGA_SWEEP_INTERVAL_SECONDS")
    parser.add_argument("--postgres", help="a PostgreSQL server's URL (default: as bench/everyday.py)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ordersaga-bench-") as workdir:
        postgres = servers.ensure_postgres(args.postgres, Path(workdir))
        env = {
            "ORDERSAGA_PAYMENT_TIMEOUT_SECONDS": str(args.timeout),
            "ORDERSAGA_SWEEP_INTERVAL_SECONDS": str(args.sweep),
            "ORDERSAGA_SAGA_STALE_SECONDS": "120",
        }
        stack = Stack(postgres.url, **env)
        try:
            stack.start_api()
            stack.start_worker(concurrency=2)
            stack.start_beat()
            shop = Shop(stack, buyers=50)
            print(f"{args.orders} orders, {args.timeout} s to pay, a sweep every {args.sweep} s")
            with_eta = cancelled(shop, awaiting(shop, args.orders), args.timeout + 300)
            lost_ids = awaiting(shop, args.orders)
            removed = lose_eta_tasks(shop, lost_ids)
            sweep_only = cancelled(shop, lost_ids, args.timeout + 300)
            print("\n  lateness of the cancellation after its deadline:")
            show("with the ETA task", with_eta)
            show(f"ETA tasks lost ({removed})", sweep_only)
        finally:
            stack.close()
            postgres.stop()


if __name__ == "__main__":
    main()
