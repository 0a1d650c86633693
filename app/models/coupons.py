"""Coupons: a fixed amount off one order of the user who owns it.

`status` stores AVAILABLE, LOCKED or USED; EXPIRED is derived when the coupon is read, so an
expiry never needs a job to flip it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, UTCDateTime, created_at_column, id_column, updated_at_column
from app.timeutil import utcnow

AVAILABLE = "AVAILABLE"
LOCKED = "LOCKED"
USED = "USED"
EXPIRED = "EXPIRED"


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("amount_off_cents > 0", name="amount_off_positive"),
        CheckConstraint("min_order_cents >= 0", name="min_order_not_negative"),
        CheckConstraint("status IN ('AVAILABLE', 'LOCKED', 'USED')", name="status_known"),
    )

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id"), nullable=False, index=True
    )
    amount_off_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    min_order_cents: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=AVAILABLE)
    # The order holding a LOCKED coupon, or the order that USED it.
    order_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    @property
    def display_status(self) -> str:
        if self.status == AVAILABLE and self.is_expired():
            return EXPIRED
        return self.status
