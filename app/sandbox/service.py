"""What the sandbox provider does with a payment, one transaction per function.

Every status change is a compare-and-set (`UPDATE ... WHERE id = :id AND status = :expected`),
never a read followed by a write, so a pay racing a void (the buyer paying while the shop
cancels) has exactly one winner and the loser is told the status that won.

A settlement and a refund record their webhook event in the same transaction as the status
change, and hand it to the sender (`webhooks.dispatch`, a Celery message) after the commit.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.db import UnitOfWork
from app.ids import looks_like_id, new_id
from app.sandbox import webhooks
from app.sandbox.models import (
    FAILED,
    ID_PREFIX,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    PENDING,
    REFUND_SUCCEEDED,
    REFUNDED,
    SUCCEEDED,
    VOIDED,
    SandboxPayment,
)
from app.timeutil import utcnow

Outcome = Literal["succeeded", "failed"]


class SandboxError(Exception):
    """A refusal the API turns into a problem+json answer with this `code`."""

    code = "conflict"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PaymentNotFound(SandboxError):
    code = "not-found"


class WrongStatus(SandboxError):
    """The payment is not in the status the operation needs; `status_now` is the one it has."""

    code = "conflict"

    def __init__(self, detail: str, status_now: str) -> None:
        super().__init__(detail)
        self.status_now = status_now


class IdempotencyKeyReuse(SandboxError):
    """The key was first used for a payment with other parameters: refusing beats guessing."""

    code = "idempotency-key-reuse"


def create_payment(
    uow: UnitOfWork,
    *,
    amount_cents: int,
    currency: str,
    callback_url: str,
    reference: str,
    idempotency_key: str | None = None,
) -> tuple[SandboxPayment, bool]:
    """Create a pending payment; return it and whether it is new.

    With an idempotency key, the insert goes first and the unique constraint decides: a repeat,
    even one racing the first request, gets the payment that the key already made.
    """
    payment = SandboxPayment(
        id=new_id(ID_PREFIX),
        status=PENDING,
        amount_cents=amount_cents,
        currency=currency,
        callback_url=callback_url,
        reference=reference,
        idempotency_key=idempotency_key,
    )
    uow.session.add(payment)
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        if idempotency_key is None:
            raise
        existing = uow.session.scalars(
            select(SandboxPayment).where(SandboxPayment.idempotency_key == idempotency_key)
        ).one()
        wanted = (amount_cents, currency, callback_url, reference)
        if (existing.amount_cents, existing.currency, existing.callback_url, existing.reference) != wanted:
            raise IdempotencyKeyReuse(
                "This Idempotency-Key was used for a payment with other parameters."
            ) from None
        return existing, False
    return payment, True


def get_payment(uow: UnitOfWork, payment_id: str) -> SandboxPayment:
    # Anything that is not one of our ids (NUL bytes, huge strings) never reaches the database.
    payment = uow.session.get(SandboxPayment, payment_id) if looks_like_id(payment_id) else None
    if payment is None:
        raise PaymentNotFound(f"No payment {payment_id!r}.")
    return payment


def void_payment(uow: UnitOfWork, payment_id: str) -> SandboxPayment:
    """Cancel a payment the buyer has not paid; only a pending one can be voided."""
    _compare_and_set(uow, payment_id, PENDING, VOIDED)
    uow.commit()
    return _reload(uow, payment_id)


def refund_payment(uow: UnitOfWork, payment_id: str) -> SandboxPayment:
    """Give the money back; only a succeeded payment can be refunded. Announced by webhook."""
    _compare_and_set(uow, payment_id, SUCCEEDED, REFUNDED)
    return _commit_and_announce(uow, payment_id, REFUND_SUCCEEDED)


def settle(uow: UnitOfWork, payment_id: str, outcome: Outcome) -> SandboxPayment:
    """The buyer paid (`succeeded`) or the payment was declined (`failed`).

    This is the one place a payment is settled, from the API and from the checkout page alike.
    The webhook event is recorded before the commit, in the same transaction as the settlement,
    so that no settled payment goes unannounced and no announcement is made of a settlement
    that rolled back; it is sent to the delivery task only after the commit.
    """
    if outcome not in (SUCCEEDED, FAILED):
        raise ValueError(f"unknown outcome {outcome!r}")
    _compare_and_set(uow, payment_id, PENDING, outcome)
    return _commit_and_announce(
        uow, payment_id, PAYMENT_SUCCEEDED if outcome == SUCCEEDED else PAYMENT_FAILED
    )


def _commit_and_announce(uow: UnitOfWork, payment_id: str, event_type: str) -> SandboxPayment:
    """Record the event in the open transaction, commit both, then hand the event to the sender."""
    payment = _reload(uow, payment_id)
    delivery = webhooks.record(uow, payment, event_type)
    uow.commit()
    webhooks.dispatch([delivery.id])
    return payment


def _compare_and_set(uow: UnitOfWork, payment_id: str, expected: str, new: str) -> None:
    """Move `expected` to `new` in one conditional UPDATE; else say what the status is now."""
    if not looks_like_id(payment_id):
        raise PaymentNotFound(f"No payment {payment_id!r}.")
    result = uow.session.execute(
        update(SandboxPayment)
        .where(SandboxPayment.id == payment_id, SandboxPayment.status == expected)
        .values(status=new, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return
    status_now = uow.session.scalar(select(SandboxPayment.status).where(SandboxPayment.id == payment_id))
    if status_now is None:
        raise PaymentNotFound(f"No payment {payment_id!r}.")
    raise WrongStatus(f"The payment is {status_now}, not {expected}.", status_now=status_now)


def _reload(uow: UnitOfWork, payment_id: str) -> SandboxPayment:
    payment = uow.session.get(SandboxPayment, payment_id, populate_existing=True)
    if payment is None:  # deleted between our commit and this read: nothing else deletes them
        raise PaymentNotFound(f"No payment {payment_id!r}.")
    return payment
