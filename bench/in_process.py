"""What one request costs the API's own process, without gunicorn, a network or other load.

    .venv/bin/python -m bench.in_process [--requests 400] [--rounds 5] [--postgres URL]

The app on PostgreSQL (the local one, or one started for the run) and a private Redis, driven
by Flask's test client one request at a time: `GET /healthz`, `GET /api/v1/orders/{id}`, a page
of 20 (`GET /api/v1/orders?limit=20`) and `POST /api/v1/orders` (one line, no coupon, no key).
Prints each one's CPU time per request (`time.process_time`), median [lowest-highest] over
the rounds, the phases interleaved within each round. The relay sends nothing (no worker
runs): a placed order's first message stays in the outbox.

CPU time rather than wall time: it is what decides the rate on the real stack, where every
process shares two cores, and it is far less moved by other work on the machine. Run it in two
checkouts, one after the other and again, to compare two versions of the code.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient

from app import create_app
from bench.everyday import on_postgres
from scripts import servers
from tests.support.api import bearer, create_goods, create_user
from tests.support.databases import create_database, drop_database, migrate
from tests.support.env import settings_for

WARM_UP = 200  # requests of each kind first: connections, caches, prepared statements
PAGE = 20


def phases(client: FlaskClient) -> dict[str, Callable[[], object]]:
    buyer, goods = create_user(client), create_goods(client, stock=10**9)
    headers = bearer(buyer["token"])
    body = {"items": [{"goods_id": goods["id"], "quantity": 1}]}

    def place() -> str:
        answer = client.post("/api/v1/orders", json=body, headers=headers)
        assert answer.status_code == 202, answer.get_json()
        order_id: str = answer.get_json()["id"]
        return order_id

    order_id = place()
    for _ in range(PAGE):  # the buyer's page is a full one
        place()
    return {
        "GET /healthz": lambda: client.get("/healthz"),
        "GET /orders/{id}": lambda: client.get(f"/api/v1/orders/{order_id}", headers=headers),
        f"GET /orders (a page of {PAGE})": lambda: client.get(
            f"/api/v1/orders?limit={PAGE}", headers=headers
        ),
        "POST /orders": place,
    }


def measure(database_url: str, redis_url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    app = create_app(settings_for(database_url, redis_url))
    runtime = app.extensions["ordersaga"]
    runtime.db.after_commit = None  # no worker here: the outbox keeps what would be sent
    try:
        runs = phases(app.test_client())
        for run in runs.values():
            for _ in range(WARM_UP):
                run()
        took: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                started = time.process_time()
                for _ in range(args.requests):
                    run()
                took[name].append((time.process_time() - started) / args.requests * 1000)
        return took
    finally:
        runtime.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="of each kind, per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server URL (default: local or own)")
    logging.disable(logging.INFO)  # one access line per request would be measured too
    on_postgres(parser.parse_args(), run)


def run(postgres_url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ordersaga-bench-") as workdir:
        redis_server = servers.start_redis(Path(workdir))
        database_url = create_database(postgres_url, prefix="ordersaga_bench")
        try:
            migrate(database_url)
            took = measure(database_url, redis_server.url, args)
        finally:
            drop_database(postgres_url, database_url)
            redis_server.stop()
    print(
        f"\nCPU ms per request, in-process, median [lowest-highest]"
        f" of {args.rounds} rounds of {args.requests}\n"
    )
    for name, values in took.items():
        print(f"  {name:<28} {statistics.median(values):6.3f} [{min(values):.3f}-{max(values):.3f}]")


if __name__ == "__main__":
    main()
