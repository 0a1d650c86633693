"""Flash sales, on the SQL side: creating one, admitting a winner, moving its units, and the end.

Stock stays conserved: goods' available + reserved + sold, plus every sale's `units_held`,
equals all stock ever added. Units move by single conditional UPDATEs only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from app.db import UnitOfWork
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
    FlashGate,
    SaleSnapshot,
)
from app.ids import new_id
from app.models import FlashSale, FlashSaleBuyer, Goods, Order, OrderItem
from app.models.orders import CANCELLED, PENDING, REFUNDED
from app.services import users
from app.services.bounds import MAX_CENTS
from app.services.errors import (
    InsufficientStock,
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
from app.services.lookup import find, order_row
from app.timeutil import from_epoch_ms, utcnow
from sagas.engine import SagaEngine
from sagas.models import ACTION, STEP_PENDING, STEP_RUNNING, Saga, SagaStep

ORDER_SAGA = "order"
BUYERS: Table = FlashSaleBuyer.__table__  # type: ignore[assignment]
SALES: Table = FlashSale.__table__  # type: ignore[assignment]
SOLD_OUT_SQLSTATE = "OS001"  # raised by the trigger of migration 0009 when a sale has no units left
ORDERS: Table = Order.__table__  # type: ignore[assignment]
ORDER_ITEMS: Table = OrderItem.__table__  # type: ignore[assignment]
FLASH_PRIORITY = 6  # Redis brokers serve 0 first: ordinary orders go ahead of a sale's backlog


def create_sale(
    uow: UnitOfWork,
    goods_id: str,
    price_cents: int,
    quantity: int,
    per_user_limit: int,
    starts_at: datetime,
    ends_at: datetime,
) -> FlashSale:
    if ends_at <= starts_at:
        raise InvalidInput("ends_at", "Must be after starts_at.")
    if price_cents * min(per_user_limit, quantity) > MAX_CENTS:
        # A buyer's order may take all it is allowed at once: its total must stay within bounds.
        raise InvalidInput(
            "per_user_limit",
            f"price_cents times the units one buyer may take may be at most {MAX_CENTS} cents.",
        )
    if find(uow.session, Goods, goods_id) is None:
        raise InvalidInput("goods_id", f"Unknown goods {goods_id!r}.")
    moved = uow.session.execute(
        update(Goods)
        .where(Goods.id == goods_id, Goods.stock_available >= quantity)
        .values(stock_available=Goods.stock_available - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise InsufficientStock(f"Goods {goods_id} have fewer than {quantity} units available.")
    sale = FlashSale(
        id=new_id("fls"),
        goods_id=goods_id,
        price_cents=price_cents,
        quantity=quantity,
        per_user_limit=per_user_limit,
        starts_at=starts_at,
        ends_at=ends_at,
        admitted=0,
        units_held=quantity,
    )
    uow.session.add(sale)
    uow.commit()
    return sale


def get_sale(uow: UnitOfWork, sale_id: str) -> FlashSale:
    sale = find(uow.session, FlashSale, sale_id)
    if sale is None:
        raise NotFound(f"No flash sale {sale_id!r}.")
    return sale


@dataclass(frozen=True)
class SaleTerms:
    """What a winner's order needs of its sale."""

    id: str
    goods_id: str
    price_cents: int
    per_user_limit: int


_terms: dict[str, SaleTerms] = {}
TERMS_CACHED = 1024


def sale_terms(uow: UnitOfWork, sale_id: str) -> SaleTerms:
    """A sale's terms never change once it is created, so each process reads them from SQL once:
    every winner after the first saves a query."""
    terms = _terms.get(sale_id)
    if terms is None:
        sale = get_sale(uow, sale_id)
        terms = SaleTerms(sale.id, sale.goods_id, sale.price_cents, sale.per_user_limit)
        if len(_terms) >= TERMS_CACHED:
            _terms.clear()
        _terms[sale_id] = terms
    return terms


def admit(uow: UnitOfWork, sale: SaleTerms, user_id: str, quantity: int) -> str:
    """Record a winner in the caller's transaction; returns the new order's id. SQL caps the
    buyer by itself here, and the sale in `take_units` and `commit_admission`, which the caller
    runs last.

    Plain INSERTs, not ORM objects: a sale's winners all arrive at its first moment, each before
    its answer, and the ORM's flush of their rows costs more than the statements (docs/benchmarks.md).
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
    order_id, total, now = new_id("ord"), sale.price_cents * quantity, utcnow()
    order = {
        "id": order_id,
        "user_id": user_id,
        "status": PENDING,
        "total_cents": total,
        "discount_cents": 0,
        "payable_cents": total,
        "coupon_id": None,
        "flash_sale_id": sale.id,
        "points_credited": False,
        "created_at": now,
        "updated_at": now,
    }
    item = {
        "order_id": order_id,
        "position": 0,
        "goods_id": sale.goods_id,
        "quantity": quantity,
        "unit_price_cents": sale.price_cents,
    }
    uow.connection.execute(insert(ORDERS), order)
    uow.connection.execute(insert(ORDER_ITEMS), item)
    return order_id


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


def _units(uow: UnitOfWork, order_id: str) -> tuple[Order, int]:
    order = order_row(uow.session, order_id)
    assert order is not None and order.flash_sale_id is not None
    return order, sum(item.quantity for item in order.items)


def reserve_for_order(uow: UnitOfWork, order_id: str) -> None:
    """The saga's reserve_stock for a flash order: the sale's units become the order's reserve."""
    order, quantity = _units(uow, order_id)
    held = uow.session.execute(
        update(FlashSale)
        .where(FlashSale.id == order.flash_sale_id, FlashSale.units_held >= quantity)
        .values(units_held=FlashSale.units_held - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(
            f"flash sale {order.flash_sale_id} holds fewer than {quantity} units for {order_id}"
        )
    uow.session.execute(
        update(Goods)
        .where(Goods.id == order.items[0].goods_id)
        .values(stock_reserved=Goods.stock_reserved + quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def release_for_order(uow: UnitOfWork, order_id: str) -> None:
    """Compensation of `reserve_for_order`: the units go back to the sale (the end of the sale
    sweeps them on to the goods if it is already over)."""
    order, quantity = _units(uow, order_id)
    moved = uow.session.execute(
        update(Goods)
        .where(Goods.id == order.items[0].goods_id, Goods.stock_reserved >= quantity)
        .values(stock_reserved=Goods.stock_reserved - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(f"order {order_id}: {quantity} units are not reserved")
    uow.session.execute(
        update(FlashSale)
        .where(FlashSale.id == order.flash_sale_id)
        .values(units_held=FlashSale.units_held + quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def release_admission(uow: UnitOfWork, order_id: str) -> tuple[str, str, int]:
    """A flash order was cancelled: its units may be bought by someone else, and its buyer's
    count goes down. Called once, in the transaction that marks the saga COMPENSATED."""
    order, quantity = _units(uow, order_id)
    sale_id = str(order.flash_sale_id)
    uow.session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale_id, FlashSale.admitted >= quantity)
        .values(admitted=FlashSale.admitted - quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    uow.session.execute(
        update(FlashSaleBuyer)
        .where(
            FlashSaleBuyer.sale_id == sale_id,
            FlashSaleBuyer.user_id == order.user_id,
            FlashSaleBuyer.units >= quantity,
        )
        .values(units=FlashSaleBuyer.units - quantity)
        .execution_options(synchronize_session=False)
    )
    return sale_id, order.user_id, quantity


def settle_ended(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Return the unsold units of ended sales to their goods' stock_available.

    Units of admitted orders whose saga has not reserved them yet stay with the sale for those
    orders; the sweep runs this again, so units freed later (a cancelled order) follow too.
    Returns the number of units moved.
    """
    now = now or utcnow()
    sales = list(
        uow.session.scalars(
            select(FlashSale)
            .where(FlashSale.ends_at <= now, FlashSale.units_held > 0)
            .with_for_update(skip_locked=True)
        )
    )
    moved_total = 0
    for sale in sales:
        awaiting_reserve = (
            uow.session.scalar(
                select(func.coalesce(func.sum(OrderItem.quantity), 0))
                .join(Order, Order.id == OrderItem.order_id)
                .join(Saga, Saga.order_id == Order.id)
                .join(
                    SagaStep,
                    (SagaStep.saga_id == Saga.id)
                    & (SagaStep.kind == ACTION)
                    & (SagaStep.name == "reserve_stock"),
                )
                .where(
                    Order.flash_sale_id == sale.id,
                    Order.status == PENDING,
                    SagaStep.status.in_((STEP_PENDING, STEP_RUNNING)),
                )
            )
            or 0
        )
        unsold = sale.units_held - int(awaiting_reserve)
        if unsold <= 0:
            continue
        sale.units_held -= unsold
        sale.settled_at = sale.settled_at or now
        uow.session.execute(
            update(Goods)
            .where(Goods.id == sale.goods_id)
            .values(stock_available=Goods.stock_available + unsold, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        moved_total += unsold
    uow.commit()
    return moved_total


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


def purchase(
    gate: FlashGate,
    new_uow: Callable[[], UnitOfWork],
    engine: SagaEngine,
    token: str,
    sale_id: str,
    quantity: int,
    now_ms: int,
) -> str:
    """Ask the gate; only a winner touches SQL. Returns the new order's id.

    The token carries the user id and is checked against its hash cached in Redis, inside the
    gate's own call; SQL is asked only when the hash is not cached (then it is cached).
    """
    user_id = users.user_id_from_token(token)
    if user_id is None:
        raise Unauthorized("The bearer token is not valid.")
    token_hash = users.hash_token(token)
    attempt = gate.try_admit(sale_id, user_id, token_hash, quantity, now_ms)
    if attempt.outcome == TOKEN_UNKNOWN:
        with new_uow() as uow:
            if users.authenticate(uow, token) is None:
                raise Unauthorized("The bearer token is not valid.")
        gate.cache_token(user_id, token_hash)
        attempt = gate.try_admit(sale_id, user_id, token_hash, quantity, now_ms)
    if attempt.outcome == MISSING:
        _rebuild(gate, new_uow, sale_id)
        attempt = gate.try_admit(sale_id, user_id, token_hash, quantity, now_ms)
    if attempt.outcome != ADMITTED:
        raise _refusal(attempt.outcome)
    # The saga starts when the gate's pace says (now, for a winner with nobody ahead), and not
    # during a rush of buyers: its first step is held for the releaser (tasks/flash.py).
    not_before = from_epoch_ms(attempt.start_ms)
    try:
        with new_uow() as uow:
            sale = sale_terms(uow, sale_id)
            order_id = admit(uow, sale, user_id, quantity)
            engine.start(uow, ORDER_SAGA, order_id, priority=FLASH_PRIORITY, not_before=not_before)
            take_units(uow, sale, quantity)
            commit_admission(uow, sale)
    except BaseException:
        gate.undo(sale_id, user_id, quantity, now_ms)
        raise
    return order_id


def release_sagas(
    gate: FlashGate,
    release_due: Callable[[datetime, int], int],
    sagas_per_second: int,
    hold_seconds: int,
    tick_seconds: float,
    now_ms: int,
) -> int:
    """Send the winners' first steps whose turn has come, earliest first; returns how many.

    While buyers rush the gate (app/flash_gate.py), the sagas wait, up to `hold_seconds` past
    their turn: the cores then go to answering buyers, and the sagas run once the rush has
    passed. A tick sends at most two ticks' worth of the pace: the turns that came since the last
    tick, and as many again to catch up after a rush or a lost tick. Caught up, a saga starts
    within a tick of its turn, and a held one within `hold_seconds` and a tick or so, below the
    stale limit after which the sweep would re-drive it.
    """
    due_by = from_epoch_ms(now_ms)
    if hold_seconds > 0 and gate.rushing(now_ms):
        due_by -= timedelta(seconds=hold_seconds)
    return release_due(due_by, max(1, round(2 * sagas_per_second * tick_seconds)))


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
