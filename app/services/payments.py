"""The shop's side of a payment: a local record, created and voided at the provider.

Provider calls never happen inside a database transaction. Creating is safe to repeat: the
local payment id is the provider's idempotency key, so a retry after a lost answer finds the
payment the first call made instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.db import UnitOfWork
from app.ids import new_id
from app.models.payments import FAILED, PENDING, REFUNDED, SUCCEEDED, VOIDED, Payment
from app.payments import Providers
from app.payments.port import (
    PaymentNotFound,
    PaymentProvider,
    PaymentStatus,
    ProviderPayment,
    ProviderRejected,
    ProviderUnavailable,
)
from app.services.lookup import order_row
from app.timeutil import utcnow


@dataclass(frozen=True)
class PaymentRequest:
    payment_id: str
    order_id: str
    provider: str
    amount_cents: int
    currency: str
    provider_payment_id: str | None
    # The provider's own expiry: fixed when the payment is recorded, so that asking again after
    # a lost answer sends the very same request (Stripe refuses an idempotency key reused with
    # other parameters). It falls a moment before the order's deadline, which is set on
    # entering AWAITING_PAYMENT, so no payment can start at the provider after the deadline.
    expires_at: datetime


@dataclass(frozen=True)
class PaymentTerms:
    default_provider: str
    currency: str
    timeout: timedelta


def prepare(uow: UnitOfWork, order_id: str, terms: PaymentTerms) -> PaymentRequest:
    """Record the payment about to be created (once), so a compensation can always find it.
    Returns what to ask the provider for."""
    payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
    if payment is None:
        order = order_row(uow.session, order_id)
        assert order is not None
        created_at = utcnow()
        payment = Payment(
            id=new_id("pmt"),
            order_id=order_id,
            provider=order.payment_provider or terms.default_provider,
            status=PENDING,
            amount_cents=order.payable_cents,
            currency=terms.currency,
            expires_at=created_at + terms.timeout,
            created_at=created_at,
            updated_at=created_at,
        )
        uow.session.add(payment)
    return _request(payment)


def request_for(uow: UnitOfWork, order_id: str) -> PaymentRequest | None:
    payment = uow.session.scalar(select(Payment).where(Payment.order_id == order_id))
    return None if payment is None else _request(payment)


def _request(payment: Payment) -> PaymentRequest:
    return PaymentRequest(
        payment_id=payment.id,
        order_id=payment.order_id,
        provider=payment.provider,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        provider_payment_id=payment.provider_payment_id,
        # A payment recorded before expiries were is a sandbox payment, which sets none.
        expires_at=payment.expires_at or payment.created_at,
    )


def callback_url(public_url: str, provider: str) -> str:
    """Where the provider sends its notifications: the webhook of that provider."""
    return f"{public_url}/api/v1/payments/webhooks/{provider}"


def create_at_provider(providers: Providers, request: PaymentRequest, public_url: str) -> ProviderPayment:
    return providers[request.provider].create_payment(
        reference=request.order_id,
        amount_cents=request.amount_cents,
        currency=request.currency,
        callback_url=callback_url(public_url, request.provider),
        idempotency_key=request.payment_id,
        expires_at=request.expires_at,
    )


def record_created(uow: UnitOfWork, order_id: str, created: ProviderPayment) -> None:
    uow.session.execute(
        update(Payment)
        .where(Payment.order_id == order_id)
        .values(provider_payment_id=created.id, checkout_url=created.checkout_url, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def void_at_provider(
    providers: Providers,
    request: PaymentRequest,
    public_url: str,
    known: ProviderPayment | None = None,
) -> PaymentStatus:
    """Void the payment at the provider and say what it ended as.

    A payment the provider already settled is reported as it is: the caller decides (refund).
    A payment the provider does not have (never created, or refused) needs no voiding.
    """
    provider = providers[request.provider]
    try:
        provider_id = (known.id if known else request.provider_payment_id) or _find_unrecorded(
            providers, request, public_url
        )
        return provider.void_payment(provider_id).status
    except PaymentNotFound:
        return PaymentStatus.VOIDED
    except ProviderRejected as rejected:
        if rejected.status_now is None:
            raise
        if rejected.status_now == PaymentStatus.SUCCEEDED:
            return _refund_now_or_later(provider, provider_id)
        return rejected.status_now


def _find_unrecorded(providers: Providers, request: PaymentRequest, public_url: str) -> str:
    """The provider's id of a payment whose creation the shop never saw answered. Where the
    provider names payments by the shop's own id, that is it; elsewhere, asking to create again
    under the same idempotency key returns the payment the first call made. A provider that
    refuses that now (Stripe, past the deadline) never made one: PaymentNotFound."""
    provider = providers[request.provider]
    if provider.keyed_by_our_id:
        return request.payment_id
    try:
        return create_at_provider(providers, request, public_url).id
    except ProviderRejected as refused:
        raise PaymentNotFound(f"nothing was created for {request.payment_id}: {refused}") from refused


def _refund_now_or_later(provider: PaymentProvider, provider_id: str) -> PaymentStatus:
    """The buyer paid while the cancellation ran: refund at once where the refund is final at
    once (the sandbox). A refund still in progress, or a provider that is down, is left to the
    refund task (SUCCEEDED: the money is still held), so that the cancellation itself always
    completes and returns the stock and the coupon."""
    try:
        return provider.refund_payment(provider_id).status
    except ProviderUnavailable:
        return PaymentStatus.SUCCEEDED


def record_voided(uow: UnitOfWork, order_id: str, status: str) -> None:
    """The local record follows the provider: VOIDED; REFUNDED if it had been paid and is
    refunded; SUCCEEDED if it had been paid and its refund is still to come."""
    final = status if status != PENDING else VOIDED
    # Money the provider holds or gave back outranks what the shop knew (a decline, say, before
    # the buyer paid with another card); an unpaid end never overwrites a payment.
    paid = final in (SUCCEEDED, REFUNDED)
    before = (PENDING, SUCCEEDED, FAILED, VOIDED) if paid else (PENDING, SUCCEEDED)
    uow.session.execute(
        update(Payment)
        .where(Payment.order_id == order_id, Payment.status.in_(before))
        .values(status=final, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
