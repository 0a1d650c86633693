"""The shop's side of a payment: a local record, created and voided at the provider.

Provider calls never happen inside a database transaction. Creating is safe to repeat: the
local payment id is the provider's idempotency key, so a retry after a lost answer finds the
payment the first call made instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from app.db import UnitOfWork
from app.ids import new_id
from app.models.payments import PENDING, REFUNDED, SUCCEEDED, VOIDED, Payment
from app.payments.port import PaymentProvider, PaymentStatus, ProviderPayment, ProviderRejected
from app.services.lookup import order_row
from app.timeutil import utcnow


@dataclass(frozen=True)
class PaymentRequest:
    payment_id: str
    order_id: str
    amount_cents: int
    currency: str
    provider_payment_id: str | None


def prepare(uow: UnitOfWork, order_id: str, provider_name: str, currency: str) -> PaymentRequest:
    """Record the payment about to be created (once), so a compensation can always find it.
    Returns what to ask the provider for."""
    payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
    if payment is None:
        order = order_row(uow.session, order_id)
        assert order is not None
        payment = Payment(
            id=new_id("pmt"),
            order_id=order_id,
            provider=provider_name,
            status=PENDING,
            amount_cents=order.payable_cents,
            currency=currency,
        )
        uow.session.add(payment)
    return _request(payment)


def request_for(uow: UnitOfWork, order_id: str) -> PaymentRequest | None:
    payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
    return None if payment is None else _request(payment)


def _request(payment: Payment) -> PaymentRequest:
    return PaymentRequest(
        payment.id, payment.order_id, payment.amount_cents, payment.currency, payment.provider_payment_id
    )


def create_at_provider(
    provider: PaymentProvider, request: PaymentRequest, callback_url: str
) -> ProviderPayment:
    return provider.create_payment(
        reference=request.order_id,
        amount_cents=request.amount_cents,
        currency=request.currency,
        callback_url=callback_url,
        idempotency_key=request.payment_id,
    )


def record_created(uow: UnitOfWork, order_id: str, created: ProviderPayment) -> None:
    uow.session.execute(
        update(Payment)
        .where(Payment.order_id == order_id)
        .values(provider_payment_id=created.id, checkout_url=created.checkout_url, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def void_at_provider(
    provider: PaymentProvider,
    request: PaymentRequest,
    callback_url: str,
    known: ProviderPayment | None = None,
) -> PaymentStatus:
    """Void the payment at the provider and say what it ended as.

    If the shop never learnt the provider's id (the answer to "create" was lost), asking to
    create again with the same idempotency key returns that payment, which is then voided.
    A payment the provider already settled is reported as it is: the caller decides (refund).
    """
    provider_id = known.id if known else request.provider_payment_id
    if provider_id is None:
        provider_id = create_at_provider(provider, request, callback_url).id
    try:
        return provider.void_payment(provider_id).status
    except ProviderRejected as rejected:
        if rejected.status_now is None:
            raise
        if rejected.status_now == PaymentStatus.SUCCEEDED:
            return provider.refund_payment(provider_id).status
        return rejected.status_now


def record_voided(uow: UnitOfWork, order_id: str, status: str) -> None:
    """The local record follows the provider: VOIDED, or REFUNDED if it had been paid."""
    final = REFUNDED if status in (SUCCEEDED, REFUNDED) else (status if status != PENDING else VOIDED)
    uow.session.execute(
        update(Payment)
        .where(Payment.order_id == order_id, Payment.status.in_((PENDING, SUCCEEDED)))
        .values(status=final, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
