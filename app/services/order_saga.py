"""The order saga: reserve stock → lock the coupon → create the payment → await payment → confirm.

One definition in the generic engine; its subject is the order. Each step calls a service
function; domain "no"s (OutOfStock, CouponUnavailable) become business failures with the
contract's cancel reason. Where an order's units come from (the shop's stock, or a flash sale
that holds them already) is the order's stock source, chosen once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol

from app import outbox
from app.config import Settings
from app.db import UnitOfWork
from app.errors import CouponUnavailable, OutOfStock
from app.models.orders import Order
from app.payments import Providers
from app.payments.port import PaymentStatus, ProviderPayment, ProviderRejected
from app.services import coupons, flash_stock, inventory, members, orders, payment_events, payments
from app.services.lookup import order_row
from sagas.definition import BusinessFailure, RetryPolicy, SagaContext, SagaDefinition, Step
from sagas.models import ENGINE_STATUSES

NAME = "order"
TASK_PREFIX = "orders.saga"
SUBJECT = "order_id"
AWAITING_PAYMENT = "AWAITING_PAYMENT"
STATUSES = (*ENGINE_STATUSES[:1], AWAITING_PAYMENT, *ENGINE_STATUSES[1:])  # as the API lists them
GIVE_BACK_TASK = "orders.flash.give_back"


@contextmanager
def _business(reason: str, *errors: type[Exception]) -> Iterator[None]:
    try:
        yield
    except errors:
        raise BusinessFailure(reason) from None


def _order(uow: UnitOfWork, ctx: SagaContext) -> Order:
    order = order_row(uow.session, ctx.subject_id)
    assert order is not None
    return order


class StockSource(Protocol):
    """Where an order's units come from, and where they go back to."""

    def reserve(self, uow: UnitOfWork, order_id: str) -> None: ...

    def release(self, uow: UnitOfWork, order_id: str) -> None: ...

    def cancelled(self, uow: UnitOfWork, order_id: str) -> None: ...


class ShopStock:
    """An ordinary order reserves from its goods' available stock."""

    def reserve(self, uow: UnitOfWork, order_id: str) -> None:
        with _business("insufficient_stock", OutOfStock):
            inventory.reserve(uow, order_id)

    def release(self, uow: UnitOfWork, order_id: str) -> None:
        inventory.release(uow, order_id)

    def cancelled(self, uow: UnitOfWork, order_id: str) -> None:
        """Nothing more: its units went back when the reservation was released."""


class FlashSaleStock:
    """A flash order's sale holds its units from the admission on: they become the order's
    reserve, and on cancellation go back to the sale, in SQL now and in the Redis gate through
    a task (once)."""

    def reserve(self, uow: UnitOfWork, order_id: str) -> None:
        flash_stock.reserve_for_order(uow, order_id)

    def release(self, uow: UnitOfWork, order_id: str) -> None:
        flash_stock.release_for_order(uow, order_id)

    def cancelled(self, uow: UnitOfWork, order_id: str) -> None:
        sale_id, user_id, quantity = flash_stock.release_admission(uow, order_id)
        give_back = {"sale_id": sale_id, "order_id": order_id, "user_id": user_id, "quantity": quantity}
        outbox.add(uow, GIVE_BACK_TASK, give_back, "orders")


SHOP_STOCK, FLASH_SALE_STOCK = ShopStock(), FlashSaleStock()


RESERVE_STOCK, RELEASE_STOCK = "reserve_stock", "release_stock"  # the step and its compensation


def stock_source(order: Order) -> StockSource:
    return SHOP_STOCK if order.flash_sale_id is None else FLASH_SALE_STOCK


class OrderSteps:
    """The saga's step functions, bound to the payment provider and the settings."""

    def __init__(self, new_uow: Callable[[], UnitOfWork], providers: Providers, settings: Settings) -> None:
        self.new_uow = new_uow
        self.providers = providers
        self.payment_timeout = timedelta(seconds=settings.payment_timeout_seconds)
        self.terms = payments.PaymentTerms(providers.default.name, settings.currency, self.payment_timeout)
        self.public_url = settings.public_url
        self.timeout_horizon = payment_events.timeout_horizon(
            timedelta(seconds=settings.sweep_interval_seconds)
        )

    def reserve_stock(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        stock_source(_order(uow, ctx)).reserve(uow, ctx.subject_id)

    def release_stock(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        if ctx.action_applied:
            stock_source(_order(uow, ctx)).release(uow, ctx.subject_id)

    def has_coupon(self, uow: UnitOfWork, ctx: SagaContext) -> bool:
        return _order(uow, ctx).coupon_id is not None

    def lock_coupon(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        with _business("coupon_unavailable", CouponUnavailable):
            coupons.lock_for_order(uow, _order(uow, ctx))

    def release_coupon(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        coupons.release_for_order(uow, _order(uow, ctx))  # does nothing unless this order holds it

    def has_amount_due(self, uow: UnitOfWork, ctx: SagaContext) -> bool:
        return _order(uow, ctx).payable_cents > 0

    def prepare_payment(self, uow: UnitOfWork, ctx: SagaContext) -> payments.PaymentRequest:
        return payments.prepare(uow, ctx.subject_id, self.terms)

    def create_at_provider(self, ctx: SagaContext) -> ProviderPayment:
        request = ctx.prepared
        assert isinstance(request, payments.PaymentRequest), "prepare_payment runs first"
        with _business("payment_failed", ProviderRejected):  # a definite "no": retrying can't help
            created = payments.create_at_provider(self.providers, request, self.public_url)
        if created.status != PaymentStatus.PENDING:
            raise BusinessFailure("payment_failed")  # nothing the buyer could still pay
        return created

    def record_payment(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        payments.record_created(uow, ctx.subject_id, ctx.remote_result)

    def void_at_provider(self, ctx: SagaContext) -> Any:
        with self.new_uow() as uow:
            request = payments.request_for(uow, ctx.subject_id)
        if request is None:
            return None  # the action never got as far as recording a payment
        known = ctx.remote_result
        return payments.void_at_provider(self.providers, request, self.public_url, known=known)

    def record_void(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        if ctx.remote_result is None:
            return
        payments.record_voided(uow, ctx.subject_id, str(ctx.remote_result))
        if ctx.remote_result == PaymentStatus.SUCCEEDED:
            # Paid during the cancellation, its refund not final yet: the refund task (and the
            # sweep behind it) finishes it, and the order becomes REFUNDED then.
            outbox.add(uow, payment_events.REFUND_TASK, {"order_id": ctx.subject_id}, "payments")

    def await_payment(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        orders.enter_awaiting_payment(uow, ctx.subject_id, self.payment_timeout)
        payment_events.schedule_timeout(uow, ctx.saga_id, ctx.subject_id, self.timeout_horizon)

    def confirm_order(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        order = orders.confirm(uow, ctx.subject_id)
        inventory.sell(uow, order.id)
        if order.coupon_id is not None:
            coupons.use_for_order(uow, order)
        # Points go through the members queue: an order confirms even while no worker serves it.
        members.queue_credit(uow, order.id)

    def start_cancelling(self, uow: UnitOfWork, ctx: SagaContext, reason: str) -> None:
        orders.start_cancelling(uow, ctx.subject_id, reason)

    def finish_cancelling(self, uow: UnitOfWork, ctx: SagaContext) -> None:
        orders.finish_cancelling(uow, ctx.subject_id)
        stock_source(_order(uow, ctx)).cancelled(uow, ctx.subject_id)


def build(new_uow: Callable[[], UnitOfWork], providers: Providers, settings: Settings) -> SagaDefinition:
    s = OrderSteps(new_uow, providers, settings)
    retry = RetryPolicy(
        max_retries=settings.step_max_retries, backoff_seconds=settings.step_retry_backoff_seconds
    )
    reserve = Step(
        RESERVE_STOCK,
        queue="inventory",
        action=s.reserve_stock,
        compensation_name=RELEASE_STOCK,
        compensation=s.release_stock,
        retry=retry,
    )
    lock_coupon = Step(
        "lock_coupon",
        queue="coupons",
        applies=s.has_coupon,
        action=s.lock_coupon,
        compensation_name="release_coupon",
        compensation=s.release_coupon,
        retry=retry,
    )
    create_payment = Step(
        "create_payment",
        queue="payments",
        applies=s.has_amount_due,
        prepare=s.prepare_payment,
        remote=s.create_at_provider,
        action=s.record_payment,
        compensation_name="void_payment",
        remote_compensation=s.void_at_provider,
        compensation=s.record_void,
        retry=retry,
    )
    await_payment = Step(
        "await_payment",
        queue="payments",
        applies=s.has_amount_due,
        wait_status=AWAITING_PAYMENT,
        on_wait=s.await_payment,
    )
    confirm = Step("confirm_order", queue="orders", action=s.confirm_order, retry=retry)
    return SagaDefinition(
        name=NAME,
        task_prefix=TASK_PREFIX,
        subject_name=SUBJECT,
        steps=(reserve, lock_coupon, create_payment, await_payment, confirm),
        on_compensating=s.start_cancelling,
        on_compensated=s.finish_cancelling,
    )
