"""Reconciliation: the money and stock invariants checked against the database and the
payment providers, read-only, for an operator to run against production.

Every check reads one consistent snapshot (one REPEATABLE READ transaction on PostgreSQL), so a
saga step committing meanwhile cannot show as a discrepancy: each step moves its counters and
records itself in one transaction. What is legitimately in flight (a confirmed order whose
points are still queued, money for a cancelled order whose refund is on its way, a payment whose
webhook has not come yet) is judged only once it has not moved for `settle`.

The counters of stock are checked over all orders, as they are totals; the checks of single
orders and payments cover those created since `since`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Exists, Select, and_, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from app.db import Database
from app.models import coupons as coupon_status
from app.models import payments as payment_status
from app.models.coupons import Coupon
from app.models.flash_sales import FlashSale, FlashSaleBuyer
from app.models.goods import Goods
from app.models.orders import (
    AWAITING_PAYMENT,
    CANCELLED,
    CANCELLING,
    CONFIRMED,
    PAID,
    PENDING,
    REFUNDED,
    Order,
    OrderItem,
)
from app.models.payments import Payment
from app.payments import Providers
from app.payments.port import PaymentStatus, ProviderError
from app.services.order_saga import RELEASE_STOCK, RESERVE_STOCK
from app.timeutil import utcnow
from sagas.models import ACTION, COMPENSATION, STEP_SUCCEEDED, Saga, SagaStep

IN_FLIGHT = (PENDING, AWAITING_PAYMENT, PAID, CANCELLING)
MONEY_TAKEN = (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)


@dataclass(frozen=True)
class Discrepancy:
    check: str  # which invariant
    subject: str  # the id to look at: goods, order, coupon or payment
    detail: str


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)  # subjects looked at, by check
    discrepancies: list[Discrepancy] = field(default_factory=list)

    def add(self, check: str, subject: str, detail: str) -> None:
        self.discrepancies.append(Discrepancy(check, subject, detail))


def reconcile(
    db: Database, providers: Providers | None, since: datetime, settle: timedelta = timedelta(minutes=10)
) -> Report:
    """Check every invariant; `providers` None leaves out the comparison with the providers."""
    report = Report()
    settled_before = utcnow() - settle
    with _snapshot(db) as connection:
        _stock_sold(connection, report)
        _stock_reserved(connection, report)
        _flash_sales(connection, report)
        _coupons(connection, report, since)
        _confirmed_orders(connection, report, since, settled_before)
        _money_held(connection, report, since, settled_before)
        payments = connection.execute(
            select(Payment.id, Payment.provider, Payment.provider_payment_id, Payment.status)
            .add_columns(Payment.amount_cents, Payment.currency, Payment.updated_at)
            .where(Payment.created_at >= since, Payment.provider_payment_id.is_not(None))
            .order_by(Payment.id)
        ).all()
    if providers is not None:
        _against_providers(providers, payments, report, settled_before)
    return report


@contextmanager
def _snapshot(db: Database) -> Iterator[Connection]:
    options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    if db.engine.dialect.name != "postgresql":
        options = {}  # SQLite: one transaction sees one state anyway
    with db.engine.connect().execution_options(**options) as connection, connection.begin():
        yield connection


def _stock_sold(connection: Connection, report: Report) -> None:
    """Each goods has sold exactly the units of its confirmed orders' lines."""
    confirmed = (
        select(OrderItem.goods_id)
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.status == CONFIRMED)
    )
    holders = "confirmed orders"
    _compare_counter(connection, report, "stock sold", Goods.stock_sold, confirmed, holders=holders)


def _stock_reserved(connection: Connection, report: Report) -> None:
    """Each goods holds reserved exactly the units of the orders whose reservation stands: the
    saga's reserve_stock succeeded, its release_stock did not, and the order is not confirmed
    (confirming sells the reserve)."""

    holding = (
        select(OrderItem.goods_id)
        .join(Order, Order.id == OrderItem.order_id)
        .join(Saga, Saga.subject_id == Order.id)
        .where(Order.status != CONFIRMED, _reservation_stands())
    )
    holders = "orders holding a reservation"
    _compare_counter(connection, report, "stock reserved", Goods.stock_reserved, holding, holders=holders)


def _step_succeeded(name: str, kind: str) -> Exists:
    return exists().where(
        SagaStep.saga_id == Saga.id,
        SagaStep.name == name,
        SagaStep.kind == kind,
        SagaStep.status == STEP_SUCCEEDED,
    )


def _reservation_stands() -> ColumnElement[bool]:
    """The saga (joined in) reserved its order's stock and has not released it."""
    return and_(_step_succeeded(RESERVE_STOCK, ACTION), ~_step_succeeded(RELEASE_STOCK, COMPENSATION))


def _flash_sales(connection: Connection, report: Report) -> None:
    """A sale has admitted exactly the units of its orders that are not cancelled, and each
    buyer's count is theirs; a sale not yet over still holds every unit no order has taken into
    its reserve (once it is over, the unsold ones went back to the goods)."""
    units = (
        select(func.coalesce(func.sum(OrderItem.quantity), 0))
        .select_from(OrderItem)
        .join(Order, Order.id == OrderItem.order_id)
    )
    not_cancelled = Order.status.not_in((CANCELLED, REFUNDED))
    of_sale = units.where(Order.flash_sale_id == FlashSale.id)
    standing = of_sale.where(not_cancelled).scalar_subquery()
    taken = of_sale.join(Saga, Saga.subject_id == Order.id).where(_reservation_stands()).scalar_subquery()
    sales = connection.execute(
        select(FlashSale.id, FlashSale.quantity, FlashSale.admitted, FlashSale.units_held).add_columns(
            FlashSale.settled_at, standing, taken
        )
    ).all()
    for sale_id, quantity, admitted, held, settled, bought, reserved in sales:
        if admitted != bought:
            report.add(
                "flash sales", sale_id, f"admitted is {admitted}; its orders not cancelled hold {bought}"
            )
        if settled is None and held != quantity - reserved:
            detail = f"units_held is {held}; {quantity} on sale less {reserved} in orders' reserves"
            report.add("flash sales", sale_id, detail)
    buyers = connection.execute(
        select(FlashSaleBuyer.sale_id, FlashSaleBuyer.user_id, FlashSaleBuyer.units).add_columns(
            units.where(
                Order.flash_sale_id == FlashSaleBuyer.sale_id,
                Order.user_id == FlashSaleBuyer.user_id,
                not_cancelled,
            ).scalar_subquery()
        )
    ).all()
    for sale_id, user_id, counted, bought in buyers:
        if counted != bought:
            report.add(
                "flash sales", sale_id, f"buyer {user_id} counts {counted} units; their orders hold {bought}"
            )
    report.checked["flash sales"] = len(sales)


def _compare_counter(
    connection: Connection,
    report: Report,
    check: str,
    counter: InstrumentedAttribute[int],
    lines: Select[Any],
    *,
    holders: str,
) -> None:
    """Each goods' `counter` against the units of the order lines `lines` selects (their
    goods_id; the order lines joined in)."""
    units = (
        lines.add_columns(func.sum(OrderItem.quantity).label("units")).group_by(OrderItem.goods_id).subquery()
    )
    rows = connection.execute(
        select(Goods.id, counter, func.coalesce(units.c.units, 0)).outerjoin(
            units, units.c.goods_id == Goods.id
        )
    ).all()
    report.checked[check] = len(rows)
    for goods_id, counted, held in rows:
        if counted != held:
            report.add(check, goods_id, f"{counter.key} is {counted}; {holders} hold {held} units")


def _coupons(connection: Connection, report: Report, since: datetime) -> None:
    """A USED coupon belongs to the confirmed order it discounted; a LOCKED one to an order
    still in flight that names it; and a confirmed order's coupon is USED by it."""
    rows = connection.execute(
        select(Coupon.id, Coupon.status, Coupon.order_id, Order.status, Order.coupon_id)
        .outerjoin(Order, Order.id == Coupon.order_id)
        .where(Coupon.status.in_((coupon_status.USED, coupon_status.LOCKED)), Coupon.updated_at >= since)
    ).all()
    for coupon_id, status, order_id, order_state, order_coupon in rows:
        if order_coupon != coupon_id:
            report.add("coupons", coupon_id, f"{status} for order {order_id}, which does not name it")
        elif status == coupon_status.USED and order_state != CONFIRMED:
            report.add("coupons", coupon_id, f"USED by order {order_id}, which is {order_state}")
        elif status == coupon_status.LOCKED and order_state not in IN_FLIGHT:
            report.add("coupons", coupon_id, f"LOCKED for order {order_id}, which is {order_state}")
    unused = connection.execute(
        select(Order.id, Order.coupon_id, Coupon.status, Coupon.order_id)
        .join(Coupon, Coupon.id == Order.coupon_id)
        .where(
            Order.status == CONFIRMED,
            Order.created_at >= since,
            or_(Coupon.status != coupon_status.USED, Coupon.order_id.is_distinct_from(Order.id)),
        )
    ).all()
    for confirmed_id, its_coupon, coupon_state, holder in unused:
        detail = f"confirmed with coupon {its_coupon}, which is {coupon_state} for {holder}"
        report.add("coupons", confirmed_id, detail)
    report.checked["coupons"] = len(rows)


def _confirmed_orders(
    connection: Connection, report: Report, since: datetime, settled_before: datetime
) -> None:
    """A confirmed order was paid in full (or had nothing to pay), and its points credited."""
    rows = connection.execute(
        select(Order.id, Order.payable_cents, Order.points_credited, Order.updated_at)
        .add_columns(Payment.status, Payment.amount_cents)
        .outerjoin(Payment, Payment.order_id == Order.id)
        .where(Order.status == CONFIRMED, Order.created_at >= since)
    ).all()
    report.checked["confirmed orders"] = len(rows)
    for order_id, payable, credited, moved, paid, amount in rows:
        if payable > 0 and paid != payment_status.SUCCEEDED:
            report.add("confirmed orders", order_id, f"confirmed, but its payment is {paid or 'missing'}")
        elif payable > 0 and amount != payable:
            report.add("confirmed orders", order_id, f"paid {amount} cents of {payable}")
        if not credited and moved < settled_before:
            report.add("confirmed orders", order_id, "confirmed, but its points were never credited")


def _money_held(connection: Connection, report: Report, since: datetime, settled_before: datetime) -> None:
    """Money taken belongs to a paid or confirmed order, or is refunded: a cancelled order's
    money is on its way back only for so long, and a refunded order's payment is REFUNDED."""
    rows = connection.execute(
        select(Payment.id, Payment.status, Payment.updated_at, Order.id, Order.status)
        .join(Order, Order.id == Payment.order_id)
        .where(
            Payment.created_at >= since,
            or_(
                and_(Payment.status == payment_status.SUCCEEDED, Order.status.not_in((PAID, CONFIRMED))),
                and_(Payment.status == payment_status.REFUNDED, Order.status.not_in((REFUNDED, CANCELLED))),
                and_(Order.status == REFUNDED, Payment.status != payment_status.REFUNDED),
            ),
        )
    ).all()
    report.checked["money held"] = int(
        connection.execute(
            select(func.count()).select_from(Payment).where(Payment.created_at >= since)
        ).scalar_one()
    )
    for payment_id, status, moved, order_id, order_state in rows:
        if status == payment_status.SUCCEEDED and order_state in (CANCELLING, CANCELLED):
            if moved < settled_before:
                report.add(
                    "money held", payment_id, f"SUCCEEDED for order {order_id}, {order_state}, not refunded"
                )
        else:
            report.add("money held", payment_id, f"{status} for order {order_id}, which is {order_state}")


def _against_providers(
    providers: Providers,
    payments: Sequence[Sequence[Any]],
    report: Report,
    settled_before: datetime,
) -> None:
    """What each provider says of our payments: money it took that we do not record as taken,
    or the other way round, or another amount. A payment still moving (its webhook on the way)
    is judged once it has settled."""
    checked = 0
    for row in payments:
        payment_id, provider, provider_id, status, amount, currency, moved = row
        if provider not in providers or moved >= settled_before:
            continue
        checked += 1
        try:
            theirs = providers[provider].get_payment(provider_id)
        except ProviderError as error:
            report.add("provider", payment_id, f"{provider} could not be asked: {error}")
            continue
        if (theirs.status in MONEY_TAKEN) != (status in MONEY_TAKEN) or (
            theirs.status != status and PaymentStatus.REFUNDED in (theirs.status, status)
        ):
            report.add("provider", payment_id, f"{status} here, {theirs.status} at {provider}")
        elif (theirs.amount_cents, theirs.currency) != (amount, currency):
            report.add(
                "provider",
                payment_id,
                f"{amount} {currency} here, {theirs.amount_cents} {theirs.currency} at {provider}",
            )
    report.checked["provider"] = checked
