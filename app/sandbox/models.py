"""The sandbox provider's own table: the payments a shop asked it to collect.

It shares the shop's declarative base only so that one Alembic history creates every table; no
shop table refers to it and it refers to none, as a real provider's database would not.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, id_column, updated_at_column

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
VOIDED = "voided"
REFUNDED = "refunded"
STATUSES = (PENDING, SUCCEEDED, FAILED, VOIDED, REFUNDED)

ID_PREFIX = "sbx"


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
