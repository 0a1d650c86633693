"""Flash sales: units moved out of the goods' available stock into a sale, sold at the sale price.

The Redis gate answers buyers; these rows are the truth it is rebuilt from. `admitted` and the
per-buyer rows only move by conditional UPDATEs, so SQL itself refuses to admit more than
`quantity` units or more than `per_user_limit` per buyer, even if Redis lost its data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, UTCDateTime, created_at_column, id_column, updated_at_column


class FlashSale(Base):
    __tablename__ = "flash_sales"
    __table_args__ = (
        CheckConstraint("price_cents > 0", name="price_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("per_user_limit >= 1", name="limit_positive"),
        CheckConstraint("admitted >= 0 AND admitted <= quantity", name="admitted_within_quantity"),
        CheckConstraint("units_held >= 0", name="units_held_not_negative"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[str] = id_column()
    goods_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("goods.id"), nullable=False, index=True
    )
    price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quantity: Mapped[int] = mapped_column(BigInteger, nullable=False)
    per_user_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # Units bought by orders that are not cancelled: remaining = quantity - admitted.
    admitted: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Units the sale still holds (not yet reserved by an order's saga, nor returned to the goods).
    units_held: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # Set when the sale has ended and its unsold units went back to the goods' stock_available.
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    @property
    def remaining(self) -> int:
        return self.quantity - self.admitted


class FlashSaleBuyer(Base):
    """How many units of a sale one buyer holds (in orders that are not cancelled)."""

    __tablename__ = "flash_sale_buyers"
    __table_args__ = (CheckConstraint("units >= 0", name="units_not_negative"),)

    sale_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("flash_sales.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), primary_key=True)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
