"""Orders loaded in bulk straight into PostgreSQL, in the rows the saga leaves, for
bench/growth.py.

Placing a million orders through the API would take hours on two cores, so they are written
with INSERT ... SELECT over generate_series, in chunks, each its own transaction. Every row has
the shape a real order leaves (placed through the API, paid by the sandbox's webhook, its points
credited): the order and its lines, the saga and its five step rows, the payment and the
sandbox's own record of it, the webhook event, and the outbox messages the saga sent, marked
sent. The timestamps follow one real order's timeline, and the ids are ULIDs of their rows'
creation times, as app/ids.py makes them, so that ids sort by time as the cursor pagination
needs.

A confirmed order's history is dated over the last `HISTORY` hours: within the outbox's 24 h
retention, so every one keeps its four sent messages, and the sweep's purge deletes none of them
during the run (a shop placing 1,000,000 orders a day holds that many). An order awaiting
payment is placed `timeout` before its deadline, and its deadlines are spread over the next
`timeout`, as orders arriving steadily leave them.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from app.ids import _ALPHABET as ALPHABET
from tests.support.stack import Stack

CHUNK = 50_000  # orders per transaction
HISTORY_HOURS = 22
GOODS = 1000
ORDERS_PER_USER = 10
PRIME = 7919  # spreads consecutive orders over the users


@dataclass(frozen=True)
class State:
    """What an order in one status leaves in each table: SQL fragments over a chunk row `c`
    (`c.t`: when the order was placed, `c.paid`: when its payment's webhook came, in epoch ms)."""

    order: str
    points_credited: str
    order_updated: str
    saga: str
    saga_position: int
    saga_updated: str
    payment: str
    payment_updated: str
    sandbox: str
    sandbox_updated: str
    # (position, name, status, attempts, started, finished): each an offset "t+ms" or "paid+ms"
    steps: tuple[tuple[int, str, str, int, str | None, str | None], ...]
    # (task, queue, with the saga's id, caused by "post" or "hook", created, sent)
    messages: tuple[tuple[str, str, bool, str, str, str], ...]
    webhook: bool


SENT_BY_THE_POST = (
    ("orders.saga.reserve_stock", "inventory", True, "post", "t+14", "t+60"),
    ("orders.saga.create_payment", "payments", True, "post", "t+96", "t+110"),
)
CONFIRMED = State(
    order="CONFIRMED",
    points_credited="true",
    order_updated="paid+46",
    saga="COMPLETED",
    saga_position=4,
    saga_updated="paid+37",
    payment="SUCCEEDED",
    payment_updated="paid+4",
    sandbox="succeeded",
    sandbox_updated="paid-1",
    steps=(
        (0, "reserve_stock", "SUCCEEDED", 1, "t+80", "t+95"),
        (1, "lock_coupon", "SKIPPED", 0, None, "t+95"),
        (2, "create_payment", "SUCCEEDED", 1, "t+120", "t+230"),
        (3, "await_payment", "SUCCEEDED", 0, "t+231", "paid+8"),
        (4, "confirm_order", "SUCCEEDED", 1, "paid+30", "paid+37"),
    ),
    messages=(
        *SENT_BY_THE_POST,
        ("orders.saga.confirm_order", "orders", True, "hook", "paid+8", "paid+14"),
        ("members.credit_points", "members", False, "hook", "paid+37", "paid+41"),
    ),
    webhook=True,
)
AWAITING = State(
    order="AWAITING_PAYMENT",
    points_credited="false",
    order_updated="t+231",
    saga="AWAITING_PAYMENT",
    saga_position=3,
    saga_updated="t+230",
    payment="PENDING",
    payment_updated="t+228",
    sandbox="pending",
    sandbox_updated="t+200",
    steps=(
        (0, "reserve_stock", "SUCCEEDED", 1, "t+80", "t+95"),
        (1, "lock_coupon", "SKIPPED", 0, None, "t+95"),
        (2, "create_payment", "SUCCEEDED", 1, "t+120", "t+230"),
        (3, "await_payment", "RUNNING", 0, "t+231", None),
        (4, "confirm_order", "PENDING", 0, None, None),
    ),
    messages=SENT_BY_THE_POST,
    webhook=False,
)


def ulid_function() -> str:
    """pg_temp.ulid(prefix, ms, n): an id as app.ids.new_id makes it at epoch millisecond `ms`,
    its 80 "random" bits a per-run salt and `n` (unique within a run and a prefix). One inlined
    SQL expression, so that a million of them cost seconds, not minutes."""
    salt = secrets.randbits(40)
    salt_chars = "".join(ALPHABET[(salt >> (5 * (7 - j))) & 31] for j in range(8))
    at = [f"substr('{ALPHABET}', ((ms >> {5 * (9 - j)}) & 31)::int + 1, 1)" for j in range(10)]
    nth = [f"substr('{ALPHABET}', ((n >> {5 * (7 - j)}) & 31)::int + 1, 1)" for j in range(8)]
    body = " || ".join(["prefix || '_'", *at, f"'{salt_chars}'", *nth])
    return (
        "CREATE OR REPLACE FUNCTION pg_temp.ulid(prefix text, ms bigint, n bigint) RETURNS text"
        f" LANGUAGE sql IMMUTABLE AS $$ SELECT {body} $$"
    )


def at(offset: str | None) -> str:
    """'t+80' -> the timestamp 80 ms after the chunk row's c.t; None -> NULL."""
    if offset is None:
        return "NULL"
    base, sign, ms = offset.partition("+") if "+" in offset else offset.partition("-")
    return f"to_timestamp((c.{base} {sign} {int(ms)}) / 1000.0)"


class Loader:
    """One connection for the whole run: its temporary tables hold the bulk users and goods."""

    def __init__(self, stack: Stack, buyer_ids: list[str], timeout_ms: int) -> None:
        self.stack = stack
        self.timeout_ms = timeout_ms  # the service's ORDERSAGA_PAYMENT_TIMEOUT_SECONDS
        self.connection: Connection = stack.db.connect()
        self.buyer_ids = buyer_ids
        self.public_url = stack.base_url
        self.currency = stack.env.get("ORDERSAGA_CURRENCY", "CNY")
        self.salt = secrets.token_hex(4)
        self.loaded = 0  # confirmed orders loaded so far; the next one's n
        self.users = 0  # bulk users made so far
        self.pool = 0  # users the next orders are spread over
        self.history_end = int(time.time() * 1000) - 3_600_000
        self.checks_skipped = self._skip_foreign_key_checks()
        self.connection.execute(text(ulid_function()))
        self._goods()
        self.connection.commit()

    def _skip_foreign_key_checks(self) -> bool:
        """The loaded rows are consistent by construction, so this session skips the foreign
        keys' per-row triggers (as pg_restore --disable-triggers does), which would take a third
        of the load's time; other sessions, the service's, still check theirs. Only a superuser
        may: otherwise the checks stay."""
        try:
            self.sql("SET session_replication_role = replica")
        except DBAPIError:
            self.connection.rollback()
            return False
        return True

    def sql(self, statement: str, **params: Any) -> None:
        self.connection.execute(text(statement), params)

    def close(self) -> None:
        self.connection.close()

    def _goods(self) -> None:
        self.sql(
            "CREATE TEMP TABLE bulk_goods AS SELECT k, pg_temp.ulid('gds', :ms, k) AS id,"
            " 100 + (k * 37 % 50) * 100 AS price_cents FROM generate_series(0, :count - 1) k",
            ms=self.history_end - HISTORY_HOURS * 3_600_000 - 60_000,
            count=GOODS,
        )
        self.sql(
            "INSERT INTO goods (id, sku, name, price_cents, stock_available, stock_reserved, stock_sold,"
            " created_at, updated_at) SELECT id, 'bulk-' || :salt || '-' || k, 'Goods ' || k, price_cents,"
            " 1000000000, 0, 0, now(), now() FROM bulk_goods",
            salt=self.salt,
        )

    def _users(self, count: int, placed_from: int) -> None:
        """`count` more buyers, and the pool of users the next orders go to: these and the
        bench's own buyers (so that their pages list history too)."""
        self.sql("DROP TABLE IF EXISTS bulk_users")
        self.sql(
            "CREATE TEMP TABLE bulk_users AS SELECT (row_number() OVER () - 1)::int AS k, id, email FROM"
            " (SELECT unnest(CAST(:buyers AS text[])) AS id, NULL::text AS email UNION ALL"
            " SELECT pg_temp.ulid('usr', :ms, n), 'bulk-' || :salt || '-' || n || '@example.com'"
            " FROM generate_series(CAST(:first AS bigint), :first + :count - 1) n) u",
            buyers=self.buyer_ids,
            ms=placed_from - 60_000,
            salt=self.salt,
            first=self.users,
            count=count,
        )
        self.sql(
            "INSERT INTO users (id, name, email, email_key, token_hash, points, created_at)"
            " SELECT id, 'Buyer', email, email, md5(email) || md5(email || '.'), 0,"
            " to_timestamp(:ms / 1000.0) FROM bulk_users WHERE email IS NOT NULL",
            ms=placed_from - 60_000,
        )
        self.sql("CREATE UNIQUE INDEX ON bulk_users (k)")
        self.users += count
        self.pool = count + len(self.buyer_ids)

    def confirmed(self, count: int, biggest: int, progress: bool = True) -> None:
        """`count` more confirmed orders, dated in order over the history (spaced for `biggest`
        orders in all), each paid 20-300 s after it was placed."""
        if count <= 0:
            return
        spacing = HISTORY_HOURS * 3_600_000 / biggest
        start = self.history_end - HISTORY_HOURS * 3_600_000
        self._users(max(1, count // ORDERS_PER_USER), int(start + self.loaded * spacing))
        until = self.loaded + count
        for lo in range(self.loaded, until, CHUNK):
            hi = min(until, lo + CHUNK)
            placed = f"({start} + n * {spacing})::bigint"
            self._chunk(CONFIRMED, lo, hi, placed, paid="t + 231 + 20000 + (n * 37) % 280000")
            if progress:
                print(f"  {hi - self.loaded:,} of {count:,} loaded", flush=True)
        self.loaded = until

    def awaiting(self, count: int) -> float:
        """`count` orders awaiting payment, their deadlines spread evenly over the next payment
        timeout from now; returns now (epoch seconds), the deadlines' origin."""
        now, timeout_ms = int(time.time() * 1000), self.timeout_ms
        self._users(max(1, count // ORDERS_PER_USER), now - timeout_ms)
        first = 10**9  # far from the confirmed orders' n
        for lo in range(first, first + count, CHUNK):
            hi = min(first + count, lo + CHUNK)
            placed = f"({now} - {timeout_ms} - 231 + ((n - {first}) + 0.5) * {timeout_ms} / {count})::bigint"
            self._chunk(AWAITING, lo, hi, placed, "NULL::bigint")
        return now / 1000

    def _chunk(self, state: State, lo: int, hi: int, placed: str, paid: str) -> None:
        self.sql("DROP TABLE IF EXISTS chunk, chunk_items, chunk_totals")
        self.sql(
            f"CREATE TEMP TABLE chunk AS SELECT n, t, {paid} AS paid, pg_temp.ulid('ord', t, n) AS order_id,"
            " pg_temp.ulid('sga', t + 9, n) AS saga_id, pg_temp.ulid('pmt', t + 130, n) AS payment_id,"
            " pg_temp.ulid('sbx', t + 200, n) AS sbx_id, u.id AS user_id, 1 + n % 3 AS lines,"
            " md5(n || :salt) AS post_request, md5(n || :salt || 'hook') AS hook_request"
            f" FROM (SELECT n, {placed} AS t FROM generate_series(CAST(:lo AS bigint), :hi - 1) n) s"
            f" JOIN bulk_users u ON u.k = (n * {PRIME}) % {self.pool}",
            salt=self.salt,
            lo=lo,
            hi=hi,
        )
        self.sql(
            "CREATE TEMP TABLE chunk_items AS SELECT c.order_id, p AS position, g.id AS goods_id,"
            " 1 + (c.n + p) % 2 AS quantity, g.price_cents FROM chunk c"
            " CROSS JOIN LATERAL generate_series(0, c.lines - 1) p"
            f" JOIN bulk_goods g ON g.k = (c.n * 3 + p * 7) % {GOODS}"
        )
        self.sql(
            "CREATE TEMP TABLE chunk_totals AS SELECT order_id, sum(quantity * price_cents) AS total"
            " FROM chunk_items GROUP BY order_id"
        )
        for statement in _inserts(state, self.timeout_ms):
            self.sql(statement, currency=self.currency, base=self.public_url)
        self._stock_and_points(state)
        self.connection.commit()

    def _stock_and_points(self, state: State) -> None:
        """What the saga's steps did to the goods' stock and (once confirmed) the buyers' points."""
        sold = state is CONFIRMED
        self.sql(
            "UPDATE goods g SET stock_available = stock_available - q,"
            f" {'stock_sold = stock_sold' if sold else 'stock_reserved = stock_reserved'} + q"
            " FROM (SELECT goods_id, sum(quantity) AS q FROM chunk_items GROUP BY goods_id) i"
            " WHERE g.id = i.goods_id"
        )
        if sold:
            self.sql(
                "UPDATE users u SET points = points + p FROM (SELECT user_id, sum(total / 100) AS p"
                " FROM chunk JOIN chunk_totals USING (order_id) GROUP BY user_id) s WHERE u.id = s.user_id"
            )

    def analyze(self, *tables: str) -> None:
        """The planner's statistics of `tables` brought up to date, as autovacuum would soon."""
        self.sql(f"ANALYZE {', '.join(tables)}")
        self.connection.commit()

    def settle(self) -> float:
        """VACUUM ANALYZE every table and CHECKPOINT: the database as autovacuum would leave it,
        with the planner's statistics up to date, and no autovacuum or checkpoint of the load's
        writes in the middle of the next measurements. Returns its seconds."""
        started = time.perf_counter()
        with self.stack.db.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE)"))
            connection.execute(text("CHECKPOINT"))
        return time.perf_counter() - started


def _inserts(state: State, timeout_ms: int) -> list[str]:
    """The INSERT ... SELECTs of one chunk, parents before children, each in the order the
    service would have inserted them."""
    s, total = state, "FROM chunk c JOIN chunk_totals x USING (order_id)"
    statements = [
        f"""INSERT INTO orders (id, user_id, status, total_cents, discount_cents, payable_cents,
              payment_provider, payment_deadline, timeout_queued_at, points_credited, created_at, updated_at)
            SELECT c.order_id, c.user_id, '{s.order}', x.total, 0, x.total, 'sandbox',
              {at(f"t+{231 + timeout_ms}")}, NULL, {s.points_credited}, {at("t+0")}, {at(s.order_updated)}
            {total} ORDER BY c.n""",
        """INSERT INTO order_items (order_id, position, goods_id, quantity, unit_price_cents)
            SELECT order_id, position, goods_id, quantity, price_cents
            FROM chunk_items ORDER BY order_id, position""",
        f"""INSERT INTO sagas (id, type, subject_id, status, position, cancel_requested,
              created_at, updated_at)
            SELECT c.saga_id, 'order', c.order_id, '{s.saga}', {s.saga_position}, false,
              {at("t+9")}, {at(s.saga_updated)}
            FROM chunk c ORDER BY c.n""",
        f"""INSERT INTO saga_steps (saga_id, position, name, kind, status, attempts, started_at, finished_at)
            SELECT c.saga_id, s.position, s.name, 'action', s.status, s.attempts, s.started, s.finished
            FROM chunk c CROSS JOIN LATERAL (VALUES {_steps(s)})
              AS s(position, name, status, attempts, started, finished)
            ORDER BY c.n, s.position""",
        f"""INSERT INTO sandbox_payments (id, status, amount_cents, currency, callback_url, reference,
              idempotency_key, created_at, updated_at)
            SELECT c.sbx_id, '{s.sandbox}', x.total, :currency, :base || '/api/v1/payments/webhooks/sandbox',
              c.order_id, c.payment_id, {at("t+200")}, {at(s.sandbox_updated)}
            {total} ORDER BY c.n""",
        f"""INSERT INTO payments (id, order_id, provider, provider_payment_id, status, amount_cents,
              currency, checkout_url, expires_at, created_at, updated_at)
            SELECT c.payment_id, c.order_id, 'sandbox', c.sbx_id, '{s.payment}', x.total, :currency,
              :base || '/sandbox/checkout/' || c.sbx_id, {at(f"t+{130 + timeout_ms}")},
              {at("t+130")}, {at(s.payment_updated)}
            {total} ORDER BY c.n""",
        f"""INSERT INTO outbox_messages (task, queue, kwargs, request_id, created_at, sent_at, held)
            SELECT m.task, m.queue,
              CASE WHEN m.with_saga THEN json_build_object('saga_id', c.saga_id, 'order_id', c.order_id)
                ELSE json_build_object('order_id', c.order_id) END,
              CASE m.cause WHEN 'post' THEN c.post_request ELSE c.hook_request END, m.created, m.sent, false
            FROM chunk c CROSS JOIN LATERAL (VALUES {_messages(s)})
              AS m(task, queue, with_saga, cause, created, sent, k)
            ORDER BY c.n, m.k""",
    ]
    if s.webhook:
        statements.append(
            f"""INSERT INTO webhook_events (provider, id, type, provider_payment_id, received_at)
                SELECT 'sandbox', 'evt_' || c.hook_request, 'payment.succeeded', c.sbx_id, {at("paid+0")}
                FROM chunk c ORDER BY c.n"""
        )
    return statements


def _steps(state: State) -> str:
    return ", ".join(
        f"({position}, '{name}', '{status}', {attempts}, {at(started)}, {at(finished)})"
        for position, name, status, attempts, started, finished in state.steps
    )


def _messages(state: State) -> str:
    return ", ".join(
        f"('{task}', '{queue}', {str(with_saga).lower()}, '{cause}', {at(created)}, {at(sent)}, {k})"
        for k, (task, queue, with_saga, cause, created, sent) in enumerate(state.messages)
    )
