"""The transactional outbox: a message is a row written in the same transaction as the change
that causes it, and a relay sends it to the broker after commit (and again from the sweep if the
broker was down). A message may be sent twice; every task is idempotent.

A held message is not sent after commit: the flash-sale releaser sends it when it is due
(tasks/flash.py). A flash winner's first saga step waits for its turn this way, in the database
rather than in a worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, UTCDateTime, created_at_column


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_sent_at_id", "sent_at", "id"),
        Index("ix_outbox_messages_held_eta", "held", "eta"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(200), nullable=False)
    queue: Mapped[str] = mapped_column(String(32), nullable=False)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The W3C traceparent it was written in, when tracing is on (app/tracing.py).
    trace_context: Mapped[str | None] = mapped_column(String(64), nullable=True)
    eta: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Broker priority (Redis: 0 is served first). Flash-sale sagas queue behind ordinary orders.
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Sent by the releaser when due (`eta`), not after commit; cleared when it is released.
    held: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    created_at: Mapped[datetime] = created_at_column()
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
