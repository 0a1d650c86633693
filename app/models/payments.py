"""The shop's record of a payment at the provider (the provider's own records are its business)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, UTCDateTime, created_at_column, id_column, updated_at_column

PENDING = "PENDING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
VOIDED = "VOIDED"
REFUNDED = "REFUNDED"


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = id_column()
    order_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("orders.id"), nullable=False, unique=True
    )
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    # Null until the provider has answered; the payment is shown only once it is set.
    provider_payment_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    checkout_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # When the provider itself stops accepting this payment (see PaymentRequest.expires_at).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
