"""How long does placing an order take with the broker up, and with it down?

Placing an order needs only the database: with the broker down the outbox
keeps the message and the relay must give up at once, not hold the request. Runs the real stack
(gunicorn, PostgreSQL, a private Redis) and prints medians measured side by side in one run.

    .venv/bin/python -m bench.broker_down [--orders N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import statistics
import time

from tests.support.stack import Stack


def timed(stack: Stack, buyer: dict[str, object], goods_id: str, count: int) -> list[float]:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        response = stack.place(buyer, [(goods_id, 1)])
        took.append(time.perf_counter() - started)
        assert response.status_code == 202, response.text
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=21)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    stack = Stack(args.postgres)
    try:
        stack.start_api()
        goods, buyer = stack.goods(stock=10 * args.orders), stack.user()
        timed(stack, buyer, goods["id"], 3)  # warm-up: connections, imports
        up = timed(stack, buyer, goods["id"], args.orders)
        stack.redis.kill()
        down = timed(stack, buyer, goods["id"], args.orders)
        stack.redis.start()
        again = timed(stack, buyer, goods["id"], args.orders)
        for name, figures in (("broker up", up), ("broker down", down), ("broker back", again)):
            print(
                f"{name:<12} POST /api/v1/orders  median {statistics.median(figures) * 1000:7.1f} ms"
                f"   max {max(figures) * 1000:7.1f} ms   (n={len(figures)})"
            )
        print(f"down/up median ratio: {statistics.median(down) / statistics.median(up):.2f}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
