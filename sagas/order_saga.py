"""The order saga: reserve stock → lock the coupon → create the payment → await payment → confirm.

One definition in the generic engine. Each step calls a service function; domain "no"s
(OutOfStock, CouponUnavailable) become business failures with the contract's cancel reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from app import outbox
from app.config import Settings
from app.db import UnitOfWork
from app.models import Order
from app.payments.port import PaymentProvider, PaymentStatus, ProviderPayment, ProviderRejected
from app.services import coupons, flash_sales, inventory, orders, payment_events, payments
from app.services.errors import CouponUnavailable, OutOfStock
from app.services.lookup import order_row
from sagas.definition import BusinessFailure, RetryPolicy, SagaContext, SagaDefinition, Step

NAME = "order"
TASK_PREFIX = "orders.saga"
AWAITING_PAYMENT = "AWAITING_PAYMENT"
CREDIT_POINTS_TASK = "members.credit_points"
GIVE_BACK_TASK = "orders.flash.give_back"


@contextmanager
def _business(reason: str, *errors: type[Exception]) -> Iterator[None]:
    try:
        yield
    except errors:
        raise BusinessFailure(reason) from None


def _order(uow: UnitOfWork, ctx: SagaContext) -> Order:
    order = order_row(uow.session, ctx.order_id)
    assert order is not None
    return order


def build(new_uow: Callable[[], UnitOfWork], provider: PaymentProvider, settings: Settings) -> SagaDefinition:
    callback_url = f"{settings.public_url}/api/v1/payments/webhooks/{provider.name}"
    retry = RetryPolicy(
        max_retries=settings.step_max_retries, backoff_seconds=settings.step_retry_backoff_seconds
    )

    def reserve_stock(uow: UnitOfWork, ctx: SagaContext) -> None:
        if _order(uow, ctx).flash_sale_id is not None:
            flash_sales.reserve_for_order(uow, ctx.order_id)  # the sale holds its units already
            return
        with _business("insufficient_stock", OutOfStock):
            inventory.reserve(uow, ctx.order_id)

    def release_stock(uow: UnitOfWork, ctx: SagaContext) -> None:
        if not ctx.action_applied:
            return
        if _order(uow, ctx).flash_sale_id is not None:
            flash_sales.release_for_order(uow, ctx.order_id)
        else:
            inventory.release(uow, ctx.order_id)

    def has_coupon(uow: UnitOfWork, ctx: SagaContext) -> bool:
        return _order(uow, ctx).coupon_id is not None

    def lock_coupon(uow: UnitOfWork, ctx: SagaContext) -> None:
        with _business("coupon_unavailable", CouponUnavailable):
            coupons.lock_for_order(uow, _order(uow, ctx))

    def release_coupon(uow: UnitOfWork, ctx: SagaContext) -> None:
        coupons.release_for_order(uow, _order(uow, ctx))  # does nothing unless this order holds it

    def has_amount_due(uow: UnitOfWork, ctx: SagaContext) -> bool:
        return _order(uow, ctx).payable_cents > 0

    def prepare_payment(uow: UnitOfWork, ctx: SagaContext) -> payments.PaymentRequest:
        return payments.prepare(uow, ctx.order_id, provider.name, settings.currency)

    def create_at_provider(ctx: SagaContext) -> ProviderPayment:
        request = ctx.prepared
        assert isinstance(request, payments.PaymentRequest), "prepare_payment runs first"
        with _business("payment_failed", ProviderRejected):  # a definite "no": retrying can't help
            created = payments.create_at_provider(provider, request, callback_url)
        if created.status != PaymentStatus.PENDING:
            raise BusinessFailure("payment_failed")  # nothing the buyer could still pay
        return created

    def record_payment(uow: UnitOfWork, ctx: SagaContext) -> None:
        payments.record_created(uow, ctx.order_id, ctx.remote_result)

    def void_at_provider(ctx: SagaContext) -> Any:
        request = _payment_request(ctx)
        if request is None:
            return None  # the action never got as far as recording a payment
        return payments.void_at_provider(provider, request, callback_url, known=ctx.remote_result)

    def record_void(uow: UnitOfWork, ctx: SagaContext) -> None:
        if ctx.remote_result is not None:
            payments.record_voided(uow, ctx.order_id, str(ctx.remote_result))

    def await_payment(uow: UnitOfWork, ctx: SagaContext) -> None:
        orders.enter_awaiting_payment(uow, ctx.order_id, timedelta(seconds=settings.payment_timeout_seconds))
        payment_events.schedule_timeout(uow, ctx.saga_id, ctx.order_id)

    def confirm_order(uow: UnitOfWork, ctx: SagaContext) -> None:
        order = orders.confirm(uow, ctx.order_id)
        inventory.sell(uow, order.id)
        if order.coupon_id is not None:
            coupons.use_for_order(uow, order)
        # Points go through the members queue: an order confirms even while no worker serves it.
        outbox.add(uow, CREDIT_POINTS_TASK, {"order_id": order.id}, "members")

    def _payment_request(ctx: SagaContext) -> payments.PaymentRequest | None:
        with new_uow() as uow:
            return payments.request_for(uow, ctx.order_id)

    def on_compensating(uow: UnitOfWork, ctx: SagaContext, reason: str) -> None:
        orders.start_cancelling(uow, ctx.order_id, reason)

    def on_compensated(uow: UnitOfWork, ctx: SagaContext) -> None:
        orders.finish_cancelling(uow, ctx.order_id)
        if _order(uow, ctx).flash_sale_id is not None:
            # Its units may be bought again: in SQL now, in the Redis gate through a task (once).
            sale_id, user_id, quantity = flash_sales.release_admission(uow, ctx.order_id)
            outbox.add(
                uow,
                GIVE_BACK_TASK,
                {"sale_id": sale_id, "order_id": ctx.order_id, "user_id": user_id, "quantity": quantity},
                "orders",
            )

    return SagaDefinition(
        name=NAME,
        task_prefix=TASK_PREFIX,
        steps=(
            Step(
                "reserve_stock",
                queue="inventory",
                action=reserve_stock,
                compensation_name="release_stock",
                compensation=release_stock,
                retry=retry,
            ),
            Step(
                "lock_coupon",
                queue="coupons",
                action=lock_coupon,
                applies=has_coupon,
                compensation_name="release_coupon",
                compensation=release_coupon,
                retry=retry,
            ),
            Step(
                "create_payment",
                queue="payments",
                applies=has_amount_due,
                prepare=prepare_payment,
                remote=create_at_provider,
                action=record_payment,
                compensation_name="void_payment",
                remote_compensation=void_at_provider,
                compensation=record_void,
                retry=retry,
            ),
            Step(
                "await_payment",
                queue="payments",
                applies=has_amount_due,
                wait_status=AWAITING_PAYMENT,
                on_wait=await_payment,
            ),
            Step("confirm_order", queue="orders", action=confirm_order, retry=retry),
        ),
        on_compensating=on_compensating,
        on_compensated=on_compensated,
    )
