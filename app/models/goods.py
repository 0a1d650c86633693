"""Goods and their stock counters.

The three counters only ever move by conditional UPDATE statements (see app/services/inventory),
and the CHECK constraints make a negative count impossible even for a buggy statement.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, id_column, updated_at_column


class Goods(Base):
    __tablename__ = "goods"
    __table_args__ = (
        CheckConstraint("price_cents > 0", name="price_positive"),
        CheckConstraint("stock_available >= 0", name="available_not_negative"),
        CheckConstraint("stock_reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("stock_sold >= 0", name="sold_not_negative"),
    )

    id: Mapped[str] = id_column()
    sku: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    stock_available: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    stock_reserved: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    stock_sold: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
