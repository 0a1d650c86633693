"""The sandbox provider's own tables: the payments a shop asked it to collect, and the webhook
events it owes the shop about them.

They share the shop's declarative base only so that one Alembic history creates every table; no
shop table refers to them and they refer to none, as a real provider's database would not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, created_at_column, id_column, updated_at_column

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
VOIDED = "voided"
REFUNDED = "refunded"
STATUSES = (PENDING, SUCCEEDED, FAILED, VOIDED, REFUNDED)

ID_PREFIX = "sbx"

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
REFUND_SUCCEEDED = "refund.succeeded"
EVENT_TYPES = (PAYMENT_SUCCEEDED, PAYMENT_FAILED, REFUND_SUCCEEDED)
EVENT_ID_PREFIX = "evt"


class SandboxPayment(Base):
    __tablename__ = "sandbox_payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'voided', 'refunded')", name="status_known"
        ),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[str] = id_column()
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    callback_url: Mapped[str] = mapped_column(String(2048), nullable=False)
    reference: Mapped[str] = mapped_column(String(255), nullable=False)
    # Unique, so that two concurrent creates with one key end in one payment (insert first,
    # let the constraint decide, the loser reads the winner's row).
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class SandboxWebhookDelivery(Base):
    """One webhook event and its delivery to the payment's `callback_url`.

    The row is written in the transaction that changes the payment, so no settlement goes
    unannounced; `payload` is the event body (`id` is this row's id). `next_attempt_at` is when
    the next attempt is due: an attempt in progress pushes it a little ahead (a claim), a failed
    one to the end of its back-off, and the redelivery sweep picks up only rows well past it.
    """

    __tablename__ = "sandbox_webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "type IN ('payment.succeeded', 'payment.failed', 'refund.succeeded')", name="type_known"
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(
            "ix_sandbox_webhook_deliveries_delivered_at_next_attempt_at", "delivered_at", "next_attempt_at"
        ),
        Index("ix_sandbox_webhook_deliveries_payment_id", "payment_id"),
    )

    id: Mapped[str] = id_column()  # the event id, "evt_<ulid>"
    payment_id: Mapped[str] = mapped_column(String(32), ForeignKey(SandboxPayment.id), nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    callback_url: Mapped[str] = mapped_column(String(2048), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
