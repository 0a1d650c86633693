"""What one flash-sale winner costs the process that serves it: in-process, on the real stack.

    .venv/bin/python -m bench.flash_cost [--orders 300]
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cost.out \
        .venv/bin/python -m bench.flash_cost --orders 60 --callgrind /tmp/cost.out

Measured phases, each over `--orders` buyers of one sale:
- acceptance: a winning purchase through the WSGI app (the fast path), up to its 202;
- refusal: the same buyers again once the sale is sold out, each refused from Redis alone (a
  prepared WSGI environ straight into the app, so the test client's own work is not counted);
- saga: the two steps a flash order runs before it awaits payment (reserve_stock and
  create_payment), called on the engine as a worker would.
It prints the median CPU seconds per acceptance, per refusal and per saga (time.process_time). On a
shared two-core machine those vary widely from run to run; with `--callgrind`, under valgrind,
it counts instructions only inside the measured phases instead, which repeats closely and so
compares two versions of the code reliably.

PostgreSQL, a private Redis and a gunicorn serving the sandbox provider are real, as in
bench/flash_sale.py; the Celery workers are not started (the saga steps run here), so the relay's
messages stay in Redis.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from werkzeug.test import Client

from bench.flash_sale import open_sale
from tests.support.api import ADMIN, bearer, unique
from tests.support.processes import gunicorn, wait_until
from tests.support.stack import Stack

WARM_UP = 20


class Instructions:
    """callgrind's instruction count for the measured phases only (`--callgrind`)."""

    def __init__(self, out_file: Path | None) -> None:
        self.out_file = out_file

    @contextmanager
    def counting(self) -> Iterator[None]:
        self._switch("on")
        try:
            yield
        finally:
            self._switch("off")

    def _switch(self, state: str) -> None:
        if self.out_file is not None:
            subprocess.run(
                ["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True
            )

    def dump(self, label: str) -> int:
        """Write what was counted so far and start again from zero; returns the count."""
        if self.out_file is None:
            return 0
        subprocess.run(["callgrind_control", "-d", label, str(os.getpid())], check=True, capture_output=True)
        dumps = sorted(
            self.out_file.parent.glob(f"{self.out_file.name}.*"), key=lambda p: p.stat().st_mtime_ns
        )
        match = re.search(r"^totals: (\d+)", dumps[-1].read_text(), re.M)
        return int(match.group(1)) if match else 0


def per_unit(name: str, cpu: list[float], instructions: int, count: int) -> str:
    figure = f"{name:<11} CPU median {statistics.median(cpu) * 1000:6.2f} ms"
    if instructions:
        figure += f", {instructions / count / 1e6:6.2f} M instructions each"
    return figure


def main() -> None:
    args = _arguments()
    counter = Instructions(args.callgrind)

    stack = Stack(args.postgres, ORDERSAGA_FLASH_RATE_PER_SECOND="1000")
    try:
        app = _app_beside(stack)
        client = Client(app)

        def call(method: str, path: str, headers: dict[str, str], body: Any) -> Any:
            return client.open(path, method=method, json=body, headers=headers)

        tokens, sale = _buyers_and_sale(call, args.orders + WARM_UP)
        path = f"/api/v1/flash-sales/{sale['id']}/purchase"

        def purchase(token: str) -> Any:
            return call("POST", path, bearer(token), {"quantity": 1})

        for token in tokens[:WARM_UP]:  # tokens cached, the sale's terms read, connections open
            assert purchase(token).status_code == 202

        accepted: list[float] = []
        with counter.counting():
            for token in tokens[WARM_UP:]:
                accepted.append(_timed(lambda t=token: _expect(purchase(t), 202)))
        acceptance_instructions = counter.dump("acceptance")

        refuse = _refusal(app, path)
        for token in tokens[:WARM_UP]:
            refuse(token)
        refused: list[float] = []
        with counter.counting():
            for token in tokens[WARM_UP:]:
                refused.append(_timed(lambda t=token: refuse(t)))
        refusal_instructions = counter.dump("refusal")

        sagas, engine = _sagas_of(app, sale["id"], args.orders)

        def run_saga(saga_id: str) -> None:
            engine.run_action(saga_id, "reserve_stock")
            engine.run_action(saga_id, "create_payment")

        steps: list[float] = []
        with app.app_context(), counter.counting():
            for saga_id in sagas:
                steps.append(_timed(lambda s=saga_id: run_saga(s)))
        saga_instructions = counter.dump("saga")
        waiting = stack.sql(
            "SELECT count(*) AS n FROM orders WHERE flash_sale_id = :sale AND status = 'AWAITING_PAYMENT'",
            sale=sale["id"],
        )[0].n
        assert waiting == len(sagas), f"{waiting} of {len(sagas)} sagas reached AWAITING_PAYMENT"

        print(f"\nflash-sale cost in-process, {args.orders} orders of one sale, PostgreSQL + Redis")
        print("  " + per_unit("acceptance", accepted, acceptance_instructions, len(accepted)))
        print("  " + per_unit("refusal", refused, refusal_instructions, len(refused)) + "  (limit-exceeded)")
        print(
            "  "
            + per_unit("saga", steps, saga_instructions, len(steps))
            + "  (reserve_stock + create_payment)"
        )
    finally:
        stack.close()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument(
        "--callgrind", type=Path, metavar="OUT_FILE", help="count instructions (under valgrind, its out file)"
    )
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    return parser.parse_args()


def _app_beside(stack: Stack) -> Any:
    """The service's WSGI app in this process, on the stack's settings, with a gunicorn of the
    stack serving the sandbox provider."""
    stack.processes["api"] = gunicorn(stack.env, stack.workdir, stack.port, workers=1).start()
    wait_until(stack._ready, timeout=60, what="the API (it serves the sandbox provider)")
    os.environ.update(stack.env)
    metrics_dir = stack.workdir / "metrics"  # this process's own, not the API's
    metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # After PROMETHEUS_MULTIPROC_DIR: the app's metrics read it when they load.
    from app.config import load_settings
    from app.web import create_app

    return create_app(load_settings(stack.env))


def _buyers_and_sale(call: Callable[..., Any], buyers: int) -> tuple[list[str], dict[str, Any]]:
    """The tokens of `buyers` new users, and an open flash sale of as many units."""
    users = [
        call("POST", "/api/v1/users", ADMIN, {"name": "B", "email": f"{unique('b')}@example.com"})
        for _ in range(buyers)
    ]
    tokens = [user.get_json()["token"] for user in users]
    goods = call(
        "POST",
        "/api/v1/goods",
        ADMIN,
        {"sku": unique("sku"), "name": "Tea", "price_cents": 1000, "stock": buyers},
    ).get_json()
    sale: dict[str, Any] = call(
        "POST", "/api/v1/flash-sales", ADMIN, open_sale(goods["id"], buyers)
    ).get_json()
    return tokens, sale


def _sagas_of(app: Any, sale_id: str, count: int) -> tuple[list[str], Any]:
    """The `count` latest sagas of the sale's orders, and the saga engine that runs them."""
    from app.extension import runtime  # loaded with the app, after the environment is set

    app_state = runtime(app)
    with app_state.db.engine.connect() as connection:
        sagas = list(
            connection.scalars(
                text(
                    "SELECT s.id FROM sagas s JOIN orders o ON o.id = s.subject_id "
                    "WHERE o.flash_sale_id = :sale ORDER BY s.created_at DESC LIMIT :n"
                ),
                {"sale": sale_id, "n": count},
            )
        )
    return sagas, app_state.engine


def _refusal(app: Any, path: str) -> Callable[[str], None]:
    """A purchase that the gate refuses, called as gunicorn calls the app (a 409 expected)."""
    body = json.dumps({"quantity": 1}).encode()
    answers: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        answers.append(status)

    def refuse(token: str) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "wsgi.input": io.BytesIO(body),
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
        }
        b"".join(app.wsgi_app(environ, start_response))
        assert answers.pop().startswith("409"), "a refusal was expected"

    return refuse


def _timed(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def _expect(response: Any, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))


if __name__ == "__main__":
    main()
