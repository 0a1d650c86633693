"""The flash-sale purchase path in-process, on real PostgreSQL and Redis: what a refusal costs
(no SQL at all), rate limits, load shedding, and the contract's answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, func, select, text

from app import create_app
from app.extension import runtime
from app.flash_gate import PACE_KEY
from app.models.outbox import OutboxMessage
from app.services import flash_admission, flash_pacing
from app.services.order_saga import GIVE_BACK_TASK
from app.tables import Base
from app.timeutil import as_utc
from sagas.models import Saga
from tasks.flash import RELEASE_EVERY_SECONDS
from tests.support import brokers
from tests.support.api import ADMIN, assert_problem, bearer, create_goods, create_user
from tests.support.databases import truncate_all
from tests.support.env import settings_for
from tests.support.processes import wait_until
from tests.support.stack import BROKERS


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_sale(
    client: FlaskClient,
    *,
    quantity: int = 3,
    limit: int = 1,
    starts_in: int = -60,
    lasts: int = 3600,
    stock: int = 10,
) -> dict[str, Any]:
    goods = create_goods(client, stock=stock)
    now = datetime.now(UTC)
    body = {
        "goods_id": goods["id"],
        "price_cents": 99,
        "quantity": quantity,
        "per_user_limit": limit,
        "starts_at": _iso(now + timedelta(seconds=starts_in)),
        "ends_at": _iso(now + timedelta(seconds=starts_in + lasts)),
    }
    response = client.post("/api/v1/flash-sales", json=body, headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    sale: dict[str, Any] = response.get_json()
    sale["goods"] = goods
    return sale


def buy(client: FlaskClient, sale: dict[str, Any], user: dict[str, Any], quantity: int = 1) -> Any:
    return client.post(
        f"/api/v1/flash-sales/{sale['id']}/purchase",
        json={"quantity": quantity},
        headers=bearer(user["token"]),
    )


def test_creating_a_sale_moves_its_units_out_of_available(client: FlaskClient) -> None:
    sale = make_sale(client, quantity=4, limit=2, stock=10)
    assert {k: sale[k] for k in ("quantity", "per_user_limit", "remaining", "price_cents")} == {
        "quantity": 4,
        "per_user_limit": 2,
        "remaining": 4,
        "price_cents": 99,
    }
    assert client.get(f"/api/v1/goods/{sale['goods']['id']}").get_json()["stock_available"] == 6
    assert client.get(f"/api/v1/flash-sales/{sale['id']}").get_json()["remaining"] == 4
    goods = create_goods(client, stock=2)
    too_many = {
        **{k: sale[k] for k in ("price_cents", "per_user_limit", "starts_at", "ends_at")},
        "goods_id": goods["id"],
        "quantity": 3,
    }
    assert_problem(
        client.post("/api/v1/flash-sales", json=too_many, headers=ADMIN), 409, "insufficient-stock"
    )
    backwards = {**too_many, "quantity": 1, "ends_at": sale["starts_at"], "starts_at": sale["ends_at"]}
    assert_problem(
        client.post("/api/v1/flash-sales", json=backwards, headers=ADMIN), 422, "validation", "ends_at"
    )


def test_a_refused_purchase_touches_no_sql(app: Flask, client: FlaskClient) -> None:
    sale = make_sale(client, quantity=1)
    winner, loser = create_user(client), create_user(client)
    assert buy(client, sale, winner).status_code == 202

    engine = runtime(app).db.engine
    touched: list[str] = []
    event.listen(engine, "checkout", lambda *_: touched.append("checkout"))
    event.listen(engine, "before_cursor_execute", lambda *args: touched.append(str(args[2])))
    try:
        assert_problem(buy(client, sale, loser), 409, "sold-out")
        assert_problem(buy(client, sale, winner), 409, "limit-exceeded")
    finally:
        event.remove(engine, "checkout", touched.append) if False else None  # listeners die with the engine
    assert touched == [], touched


def test_answers_of_the_contract(client: FlaskClient) -> None:
    sale = make_sale(client, quantity=5, limit=2)
    buyer = create_user(client)
    assert_problem(buy(client, sale, buyer, quantity=3), 422, "validation", "quantity")
    assert_problem(buy(client, sale, buyer, quantity=0), 422, "validation", "quantity")
    first = buy(client, sale, buyer, quantity=2)
    assert first.status_code == 202 and first.get_json()["order_id"].startswith("ord_")
    assert_problem(buy(client, sale, buyer, quantity=1), 409, "limit-exceeded")
    order = client.get(
        f"/api/v1/orders/{first.get_json()['order_id']}", headers=bearer(buyer["token"])
    ).get_json()
    assert (order["flash_sale_id"], order["coupon_id"], order["items"][0]["unit_price_cents"]) == (
        sale["id"],
        None,
        99,
    )
    assert order["total_cents"] == order["payable_cents"] == 198
    assert client.get(f"/api/v1/flash-sales/{sale['id']}").get_json()["remaining"] == 3

    later = make_sale(client, starts_in=3600)
    over = make_sale(client, starts_in=-7200, lasts=3600)
    assert_problem(buy(client, later, create_user(client)), 409, "not-active")
    assert_problem(buy(client, over, create_user(client)), 409, "not-active")
    assert_problem(
        client.post(f"/api/v1/flash-sales/{sale['id']}/purchase", json={"quantity": 1}), 401, "unauthorized"
    )
    assert_problem(
        client.post(f"/api/v1/flash-sales/{sale['id']}/purchase", json={"quantity": 1}, headers=ADMIN),
        403,
        "forbidden",
    )
    unknown = client.post(
        "/api/v1/flash-sales/fls_01M88S610N83SY6VPQ23SAANM8/purchase",
        json={"quantity": 1},
        headers=bearer(buyer["token"]),
    )
    assert_problem(unknown, 404, "not-found")


def test_a_buyer_hammering_is_rate_limited(client: FlaskClient) -> None:
    sale = make_sale(client, quantity=1)
    buyer = create_user(client)
    answers = [buy(client, sale, buyer) for _ in range(12)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].get_json()["code"] == "rate-limited" and int(limited[0].headers["Retry-After"]) >= 1
    # Another buyer is not limited by the first one's attempts.
    assert buy(client, sale, create_user(client)).status_code == 409


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    return redis_url if request.param == "redis" else str(request.getfixturevalue("rabbitmq_url"))


@pytest.fixture
def shedding_app(pg_url: str, broker_url: str, redis_url: str) -> Iterator[Flask]:
    flask_app = create_app(settings_for(pg_url, broker_url, redis_url, ORDERSAGA_FLASH_MAX_QUEUE_DEPTH="3"))
    flask_app.extensions["ordersaga"].db.after_commit = None
    yield flask_app
    flask_app.extensions["ordersaga"].db.dispose()
    truncate_all(pg_url)


def test_purchases_are_shed_when_the_saga_queue_is_too_deep(shedding_app: Flask, broker_url: str) -> None:
    client = shedding_app.test_client()
    sale = make_sale(client, quantity=5)
    with brokers.backlog(broker_url, "inventory", 4):  # deeper than the bound of 3
        shed = buy(client, sale, create_user(client))
        assert_problem(shed, 503, "overloaded")
        assert int(shed.headers["Retry-After"]) >= 1
    # Drained: admitted again once the probe asks anew (it answers from what it read for 0.5 s).
    wait_until(
        lambda: buy(client, sale, create_user(client)).status_code == 202, timeout=10, what="admission"
    )


@pytest.fixture
def paced_app(pg_url: str, redis_url: str) -> Iterator[Flask]:
    """One saga a second, and at most 2 sagas' worth of waiting (2 s): slow enough that these
    tests' purchases, a few milliseconds apart, all fall within one pace."""
    flask_app = create_app(
        settings_for(
            pg_url, redis_url, ORDERSAGA_FLASH_SAGAS_PER_SECOND="1", ORDERSAGA_FLASH_MAX_QUEUE_DEPTH="2"
        )
    )
    flask_app.extensions["ordersaga"].db.after_commit = None  # the messages stay in the outbox
    broker = redis.Redis.from_url(redis_url)
    broker.delete(PACE_KEY)  # no earlier test's winners ahead of these
    yield flask_app
    broker.delete(PACE_KEY)
    broker.close()
    flask_app.extensions["ordersaga"].db.dispose()
    truncate_all(pg_url)


def _first_steps(flask_app: Flask) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Per order: its saga's not_before and the ETA of the first step's message."""
    with runtime(flask_app).db.uow() as uow:
        rows = uow.session.execute(
            select(Saga.subject_id, Saga.not_before, OutboxMessage.eta)
            .join(OutboxMessage, OutboxMessage.kwargs["saga_id"].as_string() == Saga.id)
            .where(OutboxMessage.task == "orders.saga.reserve_stock")
        ).all()
    return {order_id: (not_before, eta) for order_id, not_before, eta in rows}


def test_a_burst_of_winners_starts_its_sagas_at_the_configured_pace(paced_app: Flask) -> None:
    client = paced_app.test_client()
    sale = make_sale(client, quantity=5)
    buyers = [create_user(client) for _ in range(3)]
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)  # turns are in whole ms
    answers = [buy(client, sale, buyer) for buyer in buyers]
    after = datetime.now(UTC)
    assert [a.status_code for a in answers] == [202, 202, 202]
    steps = _first_steps(paced_app)
    starts = []
    for not_before, eta in (steps[a.get_json()["order_id"]] for a in answers):
        assert not_before is not None and eta is not None
        assert as_utc(eta) == as_utc(not_before)  # the first step's message carries it as its ETA
        starts.append(as_utc(not_before))
    assert before <= starts[0] <= after  # nobody ahead: its turn is when it was admitted
    assert abs((starts[1] - starts[0]).total_seconds() - 1) < 0.002
    assert abs((starts[2] - starts[1]).total_seconds() - 1) < 0.002


def test_a_winner_whose_saga_would_wait_too_long_is_shed_and_keeps_nothing(paced_app: Flask) -> None:
    client = paced_app.test_client()
    sale = make_sale(client, quantity=5)
    buyers = [create_user(client) for _ in range(4)]
    answers = [buy(client, sale, buyer) for buyer in buyers]
    assert [a.status_code for a in answers[:3]] == [202, 202, 202]  # waits of 0, 1 and 2 s
    assert_problem(answers[3], 503, "overloaded")  # 3 s: beyond the bound
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert client.get(f"/api/v1/flash-sales/{sale['id']}").get_json()["remaining"] == 2
    with runtime(paced_app).db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Saga)) == 3


def test_a_winner_that_sql_refuses_gives_its_pace_slot_back(
    paced_app: Flask, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise a database outage would fill the pace with slots no saga uses, and turn buyers
    away as busy long after the database is back."""
    client = paced_app.test_client()
    sale = make_sale(client, quantity=5)
    buyers = [create_user(client) for _ in range(2)]
    assert buy(client, sale, buyers[0]).status_code == 202  # the next saga may start 1 s on
    broker = redis.Redis.from_url(redis_url)
    pace = broker.get(PACE_KEY)

    def database_down(*_args: Any, **_kwargs: Any) -> str:
        raise RuntimeError("the database is down")

    monkeypatch.setattr(flash_admission, "admit", database_down)
    app_state = runtime(paced_app)
    with pytest.raises(RuntimeError):
        attempt = flash_admission.PurchaseAttempt(buyers[1]["token"], sale["id"], 1, int(time.time() * 1000))
        flash_admission.purchase(app_state.flash_gate, app_state.db.uow, app_state.engine, attempt)
    assert broker.get(PACE_KEY) == pace
    assert app_state.flash_gate.remaining(sale["id"]) == 4  # the unit went back too
    broker.close()


def test_cancelling_a_winner_still_waiting_for_its_turn_cancels_it_at_once(paced_app: Flask) -> None:
    """Its saga might not start for minutes; nothing of it has been applied, so it is undone now
    and its unit goes back to the sale (the give-back message is queued with the cancellation)."""
    client = paced_app.test_client()
    sale = make_sale(client, quantity=5)
    first, second = (create_user(client) for _ in range(2))
    assert buy(client, sale, first).status_code == 202
    waiting = buy(client, sale, second).get_json()["order_id"]  # its saga may start 1 s on
    cancelled = client.post(f"/api/v1/orders/{waiting}/cancel", headers=bearer(second["token"]))
    assert cancelled.status_code == 202
    order = client.get(f"/api/v1/orders/{waiting}", headers=bearer(second["token"])).get_json()
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "user_cancelled")
    saga = client.get(f"/api/v1/admin/sagas/{order['saga']['id']}", headers=ADMIN).get_json()
    assert saga["status"] == "COMPENSATED"
    assert {s["status"] for s in saga["steps"]} == {"SKIPPED"}
    with runtime(paced_app).db.uow() as uow:
        give_back = uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.task == GIVE_BACK_TASK)
        ).all()
    assert [m.kwargs["order_id"] for m in give_back] == [waiting]


@pytest.fixture
def release_app(pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """One saga a second. What commits hand the relay, and what the relay would send, are recorded
    (`app.extensions["handed"]`, `app.extensions["sent"]`) instead of going to the broker."""
    flask_app = create_app(
        settings_for(
            pg_url,
            redis_url,
            ORDERSAGA_FLASH_SAGAS_PER_SECOND="1",
        )
    )
    app_state = runtime(flask_app)
    handed: list[OutboxMessage] = []
    sent: list[OutboxMessage] = []
    app_state.db.after_commit = handed.extend
    assert app_state.relay is not None

    def record(messages: list[OutboxMessage], published: list[int] | None = None) -> int:
        sent.extend(messages)
        if published is not None:
            published.extend(message.id for message in messages)
        return len(messages)

    monkeypatch.setattr(app_state.relay, "send", record)
    flask_app.extensions.update(handed=handed, sent=sent, record=record)
    broker = redis.Redis.from_url(redis_url)
    broker.delete(PACE_KEY)  # no earlier test's winners count here
    yield flask_app
    broker.delete(PACE_KEY)
    broker.close()
    app_state.db.dispose()
    truncate_all(pg_url)


def _release(flask_app: Flask, now: datetime) -> list[str]:
    """One tick of the releaser at `now`: the order ids whose first step it sent."""
    app_state = runtime(flask_app)
    settings = app_state.settings
    assert app_state.relay is not None
    sent: list[OutboxMessage] = flask_app.extensions["sent"]
    before = len(sent)
    flash_pacing.release_sagas(
        app_state.relay.release_due,
        sagas_per_second=settings.flash_sagas_per_second,
        tick_seconds=RELEASE_EVERY_SECONDS,
        now_ms=int(now.timestamp() * 1000),
    )
    return [message.kwargs["order_id"] for message in sent[before:]]


def _not_before(flask_app: Flask, order_id: str) -> datetime:
    with runtime(flask_app).db.uow() as uow:
        value = uow.session.scalar(select(Saga.not_before).where(Saga.subject_id == order_id))
    assert value is not None
    return as_utc(value)


def test_a_winners_first_step_waits_in_the_outbox_and_goes_out_in_its_turn(
    release_app: Flask, redis_url: str
) -> None:
    client = release_app.test_client()
    sale = make_sale(client, quantity=5)
    orders = [buy(client, sale, create_user(client)).get_json()["order_id"] for _ in range(4)]
    assert release_app.extensions["handed"] == []  # not sent after commit
    relay = runtime(release_app).relay
    assert relay is not None
    assert relay.send_overdue(older_than=timedelta(0)) == 0  # nor by the sweep
    first_turn = _not_before(release_app, orders[0])  # the others' turns are 1, 2 and 3 s on

    assert _release(release_app, first_turn - timedelta(milliseconds=1)) == []  # not its turn yet
    # 2.5 s on, three are due; at one saga a second, a tick sends two at most (one second's and
    # one to catch up), the earliest first.
    at = first_turn + timedelta(milliseconds=2500)
    assert [_release(release_app, at) for _ in range(3)] == [orders[:2], orders[2:3], []]
    assert _release(release_app, first_turn + timedelta(milliseconds=3000)) == orders[3:]
    released: list[OutboxMessage] = release_app.extensions["sent"]
    assert [message.eta for message in released] == [None] * 4  # due: no ETA for the worker to time
    assert {message.task for message in released} == {"orders.saga.reserve_stock"}
    with runtime(release_app).db.uow() as uow:
        ids = [message.id for message in released]
        held = uow.session.scalars(select(OutboxMessage.held).where(OutboxMessage.id.in_(ids)))
        assert list(held) == [False] * 4  # released once: a second releaser skips them


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db_app(
    request: pytest.FixtureRequest, pg_url: str, redis_url: str, tmp_path: Path
) -> Iterator[Flask]:
    """The app on PostgreSQL (where a deferred trigger caps a sale at commit) or on the embedded
    SQLite (where an UPDATE before the commit does), with a real Redis gate either way."""
    database_url = pg_url if request.param == "postgresql" else f"sqlite:///{tmp_path}/gate.sqlite3"
    flask_app = create_app(settings_for(database_url, redis_url))
    app_state = runtime(flask_app)
    if request.param == "sqlite":
        Base.metadata.create_all(app_state.db.engine)
    app_state.db.after_commit = None
    yield flask_app
    app_state.db.dispose()
    if request.param == "postgresql":
        truncate_all(pg_url)


def test_sql_refuses_a_winner_that_a_stale_gate_let_past_the_sales_units(
    any_db_app: Flask, redis_url: str
) -> None:
    """A gate that lost track (here: told it has a unit again) must not oversell: SQL refuses the
    winner with the contract's sold-out, keeps nothing of it, and the gate takes the unit back."""
    client = any_db_app.test_client()
    sale = make_sale(client, quantity=1)
    assert buy(client, sale, create_user(client)).status_code == 202
    broker = redis.Redis.from_url(redis_url)
    broker.hset(f"fs:{{{sale['id']}}}", "remaining", 1)  # stale: SQL has sold the only unit
    broker.close()
    assert_problem(buy(client, sale, create_user(client)), 409, "sold-out")
    with runtime(any_db_app).db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Saga)) == 1
        assert uow.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert client.get(f"/api/v1/flash-sales/{sale['id']}").get_json()["remaining"] == 0
    assert runtime(any_db_app).flash_gate.remaining(sale["id"]) == 1  # given back: the undo ran


def test_a_winner_held_past_its_turn_is_cancelled_at_once(release_app: Flask) -> None:
    """Its turn has come but its first step still waits (for the next tick): nothing of it has
    been applied, so it is undone now and its unit goes back."""
    client = release_app.test_client()
    sale = make_sale(client, quantity=5)
    buyer = create_user(client)
    order_id = buy(client, sale, buyer).get_json()["order_id"]
    assert _not_before(release_app, order_id) <= datetime.now(UTC)
    assert client.post(f"/api/v1/orders/{order_id}/cancel", headers=bearer(buyer["token"])).status_code == 202
    order = client.get(f"/api/v1/orders/{order_id}", headers=bearer(buyer["token"])).get_json()
    assert order["status"] == "CANCELLED"


def test_a_release_the_broker_refuses_is_held_again(
    release_app: Flask, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else, once the broker is back, the sweep would send the whole backlog at once, unpaced."""
    client = release_app.test_client()
    sale = make_sale(client, quantity=5)
    order_id = buy(client, sale, create_user(client)).get_json()["order_id"]
    relay = runtime(release_app).relay
    assert relay is not None

    def broker_down(_messages: list[OutboxMessage], _published: list[int] | None = None) -> int:
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(relay, "send", broker_down)
    with pytest.raises(ConnectionError):
        _release(release_app, datetime.now(UTC))
    with runtime(release_app).db.uow() as uow:
        first_step = OutboxMessage.task == "orders.saga.reserve_stock"
        assert list(uow.session.scalars(select(OutboxMessage.held).where(first_step))) == [True]
    monkeypatch.setattr(relay, "send", release_app.extensions["record"])  # the broker is back
    assert relay.send_overdue(older_than=timedelta(0)) == 0  # not the sweep's to send, unpaced
    assert _release(release_app, datetime.now(UTC)) == [order_id]  # but the releaser's, at the pace


def test_two_releasers_at_once_send_each_message_once(
    release_app: Flask, redis_url: str, pg_url: str
) -> None:
    """While one releaser holds its claim, another skips those messages rather than waiting for
    them (or sending them too)."""
    client = release_app.test_client()
    sale = make_sale(client, quantity=5)
    orders = [buy(client, sale, create_user(client)).get_json()["order_id"] for _ in range(2)]
    later = _not_before(release_app, orders[-1]) + timedelta(seconds=10)
    other = create_engine(pg_url)
    with ThreadPoolExecutor(max_workers=1) as pool, other.connect() as connection:
        claimed = connection.execute(
            text("SELECT id FROM outbox_messages WHERE held ORDER BY eta, id LIMIT 1 FOR UPDATE")
        ).scalar_one()  # the first releaser's claim, not yet committed
        try:
            second = pool.submit(_release, release_app, later).result(timeout=10)  # no waiting on the lock
        finally:
            connection.rollback()  # the first releaser gives up (and a blocked second one goes on)
    other.dispose()
    assert second == orders[1:]
    assert claimed not in [m.id for m in release_app.extensions["sent"]]
    assert _release(release_app, later) == orders[:1]  # so it goes out now


def test_the_gate_loads_its_script_again_after_redis_lost_it(client: FlaskClient, redis_url: str) -> None:
    sale = make_sale(client, quantity=2)
    assert buy(client, sale, create_user(client)).status_code == 202
    redis.Redis.from_url(redis_url).script_flush()  # as a Redis restart without persistence does
    assert buy(client, sale, create_user(client)).status_code == 202


def test_the_gate_gets_a_live_connection_after_redis_closed_its_connections(
    client: FlaskClient, redis_url: str
) -> None:
    """The admission call takes its connection from the pool, which replaces one that Redis
    closed (an idle timeout, CLIENT KILL); a connection kept aside would fail here."""
    sale = make_sale(client, quantity=2)
    assert buy(client, sale, create_user(client)).status_code == 202
    buyer = create_user(client)
    admin = redis.Redis.from_url(redis_url)
    me, db = admin.client_id(), admin.connection_pool.connection_kwargs.get("db", 0)
    ours = [c for c in admin.client_list() if int(c["db"]) == db and int(c["id"]) != me]
    assert ours and all(admin.client_kill_filter(_id=c["id"]) == 1 for c in ours)
    assert buy(client, sale, buyer).status_code == 202


def test_a_purchase_while_redis_is_down_is_a_503_that_keeps_nothing(pg_url: str) -> None:
    down = create_app(settings_for(pg_url, "redis://127.0.0.1:1/0"))
    down.extensions["ordersaga"].db.after_commit = None
    try:
        client = down.test_client()
        goods = create_goods(client, stock=3)
        now = datetime.now(UTC)
        sale_body = {
            "goods_id": goods["id"],
            "price_cents": 99,
            "quantity": 1,
            "per_user_limit": 1,
            "starts_at": _iso(now - timedelta(minutes=1)),
            "ends_at": _iso(now + timedelta(hours=1)),
        }
        sale = client.post("/api/v1/flash-sales", json=sale_body, headers=ADMIN).get_json()
        answer = buy(client, sale, create_user(client))
        assert_problem(answer, 503, "overloaded")
        assert int(answer.headers["Retry-After"]) >= 1
        with down.extensions["ordersaga"].db.engine.connect() as connection:
            orders = connection.scalar(
                text("SELECT count(*) FROM orders WHERE flash_sale_id = :id"), {"id": sale["id"]}
            )
        assert orders == 0
    finally:
        down.extensions["ordersaga"].db.dispose()
        truncate_all(pg_url)
