"""Orders, their lines, and the idempotency keys that guard their creation."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, UTCDateTime, created_at_column, id_column, updated_at_column
from app.models.payments import Payment

if TYPE_CHECKING:
    from sagas.models import Saga

PENDING = "PENDING"
AWAITING_PAYMENT = "AWAITING_PAYMENT"
PAID = "PAID"
CONFIRMED = "CONFIRMED"
CANCELLING = "CANCELLING"
CANCELLED = "CANCELLED"
REFUNDED = "REFUNDED"
STATUSES = (PENDING, AWAITING_PAYMENT, PAID, CONFIRMED, CANCELLING, CANCELLED, REFUNDED)
CANCEL_REASONS = (
    "insufficient_stock",
    "coupon_unavailable",
    "payment_failed",
    "payment_timeout",
    "user_cancelled",
)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        CheckConstraint("discount_cents >= 0", name="discount_not_negative"),
        CheckConstraint("payable_cents >= 0", name="payable_not_negative"),
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index("ix_orders_status_updated_at", "status", "updated_at"),
        Index("ix_orders_status_payment_deadline", "status", "payment_deadline"),
        Index("ix_orders_status_cancel_reason", "status", "cancel_reason"),  # /metrics counts by both
    )

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=PENDING)
    total_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    discount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    payable_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    coupon_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("coupons.id"), nullable=True)
    flash_sale_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The provider the buyer chose; None pays through the deployment's default (flash sales).
    payment_provider: Mapped[str | None] = mapped_column(String(16), nullable=True)
    payment_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When the payment timeout's task was last queued: null until the deadline is near (the ETA
    # task), then set again whenever the sweep's backstop queues it for an order still awaiting
    # payment past its deadline.
    timeout_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # How often the sweep queued the timeout again past the deadline (app.backoff).
    timeout_requeues: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # How often the sweep queued the points' credit again (app.backoff).
    points_requeues: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Set in the transaction that credits the buyer's points, so they are credited once.
    points_credited: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    items: Mapped[list[OrderItem]] = relationship(
        lazy="selectin", order_by="OrderItem.position", cascade="all, delete-orphan"
    )
    payment: Mapped[Payment | None] = relationship(lazy="selectin", uselist=False, viewonly=True)
    saga: Mapped[Saga | None] = relationship(
        primaryjoin="Order.id == foreign(Saga.subject_id)", lazy="selectin", uselist=False, viewonly=True
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_not_negative"),
    )

    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("orders.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    goods_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("goods.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)


class IdempotencyKey(Base):
    """One row per (user, Idempotency-Key): inserted first, so the unique key decides races."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    order_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    created_at: Mapped[datetime] = created_at_column()


# The tables themselves, for the hot paths that insert and read orders without the ORM.
ORDERS: Table = Order.__table__  # type: ignore[assignment]
ORDER_ITEMS: Table = OrderItem.__table__  # type: ignore[assignment]
