"""Flash-sale admission: the Redis gate decides each attempt; only a winner touches SQL.

A winner's order, its buyer's count and its saga are written in one transaction before its
answer. SQL caps the buyer and the sale by itself, so a gate that Redis lost (rebuilt here from
SQL) or a stale one can turn buyers away wrongly for a moment but never oversell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from app.db import UnitOfWork
from app.errors import (
    InvalidInput,
    LimitExceeded,
    NotActive,
    NotFound,
    Overloaded,
    RateLimited,
    ServiceError,
    SoldOut,
    Unauthorized,
)
from app.flash_gate import (
    ADMITTED,
    BUSY,
    LIMIT_EXCEEDED,
    MISSING,
    NOT_ACTIVE,
    RATE_LIMITED,
    SOLD_OUT,
    TOKEN_UNKNOWN,
    TOO_MANY,
    UNAUTHORIZED,
    Attempt,
    FlashGate,
    SaleSnapshot,
)
from app.models.flash_sales import FlashSale, FlashSaleBuyer
from app.models.orders import CANCELLED, REFUNDED, Order
from app.services import users
from app.services.flash_sales import BUYERS, SALES, SaleTerms, sale_terms
from app.services.lookup import find
from app.services.orders import Line, NewOrder, insert_new_order
from app.timeutil import from_epoch_ms, utcnow
from sagas.engine import SagaEngine

ORDER_SAGA = "order"


SOLD_OUT_SQLSTATE = "OS001"  # raised by the trigger of migration 0009 when a sale has no units left


FLASH_PRIORITY = 6  # Redis brokers serve 0 first: ordinary orders go ahead of a sale's backlog


@dataclass(frozen=True)
class PurchaseAttempt:
    """One buyer's attempt, as the gate sees it: who (by token), what, and when (epoch ms)."""

    token: str
    sale_id: str
    quantity: int
    now_ms: int


def purchase(
    gate: FlashGate, new_uow: Callable[[], UnitOfWork], engine: SagaEngine, attempt: PurchaseAttempt
) -> str:
    """Ask the gate; only a winner touches SQL. Returns the new order's id."""
    user_id = users.user_id_from_token(attempt.token)
    if user_id is None:
        raise Unauthorized("The bearer token is not valid.")
    start_ms = _ask_gate(gate, new_uow, user_id, attempt)
    # The saga starts when the gate's pace says (now, for a winner with nobody ahead): its first
    # step is held for the releaser (tasks/flash.py) until then.
    not_before = from_epoch_ms(start_ms)
    try:
        with new_uow() as uow:
            sale = sale_terms(uow, attempt.sale_id)
            order_id = admit(uow, sale, user_id, attempt.quantity)
            engine.start(uow, ORDER_SAGA, order_id, priority=FLASH_PRIORITY, not_before=not_before)
            take_units(uow, sale, attempt.quantity)
            commit_admission(uow, sale)
    except BaseException:
        gate.undo(attempt.sale_id, user_id, attempt.quantity, attempt.now_ms)
        raise
    return order_id


def _ask_gate(
    gate: FlashGate, new_uow: Callable[[], UnitOfWork], user_id: str, attempt: PurchaseAttempt
) -> int:
    """The gate's verdict; for a winner, when its saga may start (epoch ms).

    The token carries the user id and is checked against its hash cached in Redis, inside the
    gate's own call; SQL is asked only when the hash is not cached (then it is cached), and only
    when Redis lost the sale is the gate rebuilt from SQL.
    """
    token_hash = users.hash_token(attempt.token)

    def ask() -> Attempt:
        return gate.try_admit(attempt.sale_id, user_id, token_hash, attempt.quantity, attempt.now_ms)

    answer = ask()
    if answer.outcome == TOKEN_UNKNOWN:
        with new_uow() as uow:
            if users.authenticate(uow, attempt.token) is None:
                raise Unauthorized("The bearer token is not valid.")
        gate.cache_token(user_id, token_hash)
        answer = ask()
    if answer.outcome == MISSING:
        _rebuild(gate, new_uow, attempt.sale_id)
        answer = ask()
    if answer.outcome != ADMITTED:
        raise _refusal(answer.outcome)
    return answer.start_ms


def admit(uow: UnitOfWork, sale: SaleTerms, user_id: str, quantity: int) -> str:
    """Record a winner in the caller's transaction; returns the new order's id. SQL caps the
    buyer by itself here, and the sale in `take_units` and `commit_admission`, which the caller
    runs last.

    A sale's winners all arrive at its first moment, each before its answer: the order goes in
    as plain INSERTs (`insert_new_order`).
    """
    insert_ = pg_insert if uow.connection.dialect.name == "postgresql" else sqlite_insert
    upsert = (
        insert_(BUYERS)
        .values(sale_id=sale.id, user_id=user_id, units=quantity)
        .on_conflict_do_update(
            index_elements=[BUYERS.c.sale_id, BUYERS.c.user_id],
            set_={"units": BUYERS.c.units + quantity},
            where=BUYERS.c.units + quantity <= sale.per_user_limit,
        )
        .returning(BUYERS.c.units)  # no row back: the conflict's WHERE refused the update
    )
    if uow.connection.execute(upsert).first() is None:
        raise LimitExceeded(f"At most {sale.per_user_limit} units of this sale per buyer.")
    new = NewOrder(user_id, [Line(sale.goods_id, quantity)])
    row, _ = insert_new_order(uow, new, {sale.goods_id: sale.price_cents}, flash_sale_id=sale.id)
    return str(row["id"])


def take_units(uow: UnitOfWork, sale: SaleTerms, quantity: int) -> None:
    """SQL's own cap on the sale, so that a stale or rebuilt gate cannot oversell.

    Every winner updates the sale's one row and holds its lock until commit. On PostgreSQL a
    deferred trigger (migration 0009) does it inside the COMMIT, and `commit_admission` turns
    its refusal into SoldOut: here, the row would stay locked from this UPDATE until a busy API
    process ran this thread again to send the COMMIT, and a sale's winners would queue on it
    in its first seconds (docs/benchmarks.md). SQLite serialises writers anyway.
    """
    if uow.connection.dialect.name == "postgresql":
        return
    taken = uow.connection.execute(
        update(SALES)
        .where(SALES.c.id == sale.id, SALES.c.admitted + quantity <= SALES.c.quantity)
        .values(admitted=SALES.c.admitted + quantity, updated_at=utcnow())
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise SoldOut(f"Flash sale {sale.id} is sold out.")


def commit_admission(uow: UnitOfWork, sale: SaleTerms) -> None:
    """Commit a winner; on PostgreSQL this is where the sale's cap is checked."""
    try:
        uow.commit()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == SOLD_OUT_SQLSTATE:
            raise SoldOut(f"Flash sale {sale.id} is sold out.") from None
        raise


def snapshot(uow: UnitOfWork, sale_id: str) -> SaleSnapshot | None:
    """The gate's state, from SQL: remaining units, and units per buyer in live orders."""
    sale = find(uow.session, FlashSale, sale_id)
    if sale is None:
        return None
    buyers = dict(
        uow.session.execute(
            select(FlashSaleBuyer.user_id, FlashSaleBuyer.units).where(FlashSaleBuyer.sale_id == sale_id)
        ).all()
    )
    given_back = tuple(
        uow.session.scalars(
            select(Order.id).where(Order.flash_sale_id == sale_id, Order.status.in_((CANCELLED, REFUNDED)))
        )
    )
    return SaleSnapshot(
        sale_id=sale.id,
        starts_ms=int(sale.starts_at.timestamp() * 1000),
        ends_ms=int(sale.ends_at.timestamp() * 1000),
        per_user_limit=sale.per_user_limit,
        remaining=sale.remaining,
        buyers={user: int(units) for user, units in buyers.items()},
        given_back=given_back,
    )


def _rebuild(gate: FlashGate, new_uow: Callable[[], UnitOfWork], sale_id: str) -> None:
    """Redis lost the gate (or never had it): load it from SQL, in one process at a time."""
    if not gate.rebuild_lock(sale_id):
        raise Overloaded("The sale is being restored after a cache loss; retry in a moment.")
    try:
        with new_uow() as uow:
            state = snapshot(uow, sale_id)
        if state is None:
            raise NotFound(f"No flash sale {sale_id!r}.")
        gate.load(state)
    finally:
        gate.release_rebuild_lock(sale_id)


def _refusal(outcome: str) -> ServiceError:
    if outcome == TOO_MANY:
        return InvalidInput("quantity", "More than this sale's per-user limit in one purchase.")
    if outcome == UNAUTHORIZED:
        return Unauthorized("The bearer token is not valid.")
    refusals: dict[str, ServiceError] = {
        SOLD_OUT: SoldOut("The sale is sold out."),
        LIMIT_EXCEEDED: LimitExceeded("That would take you past this sale's per-user limit."),
        NOT_ACTIVE: NotActive("The sale has not started, or has ended."),
        RATE_LIMITED: RateLimited("Too many purchase attempts; slow down."),
        BUSY: Overloaded("The sale's orders are queued deeper than the workers can drain soon; retry later."),
    }
    return refusals.get(outcome, Overloaded(f"The sale gate answered {outcome!r}."))
