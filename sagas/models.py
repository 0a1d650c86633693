"""Persisted saga state: the saga and one row per action and per compensation.

Every transition is made while holding the saga row's lock, so a step, its compensation, a
cancellation and a sweep never interleave on one saga.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, UTCDateTime, created_at_column, id_column
from app.models.outbox import BigId
from app.timeutil import utcnow

# Saga statuses, as the API reports them.
RUNNING = "RUNNING"
AWAITING = "AWAITING_PAYMENT"
COMPENSATING = "COMPENSATING"
COMPLETED = "COMPLETED"
COMPENSATED = "COMPENSATED"
FAILED = "FAILED"
SAGA_STATUSES = (RUNNING, AWAITING, COMPENSATING, COMPLETED, COMPENSATED, FAILED)

# Step kinds and statuses.
ACTION = "action"
COMPENSATION = "compensation"
STEP_PENDING = "PENDING"
STEP_RUNNING = "RUNNING"
STEP_SUCCEEDED = "SUCCEEDED"
STEP_FAILED = "FAILED"
STEP_SKIPPED = "SKIPPED"


class Saga(Base):
    __tablename__ = "sagas"
    __table_args__ = (Index("ix_sagas_status_updated_at", "status", "updated_at"),)

    id: Mapped[str] = id_column()
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=RUNNING)
    # The position of the step being run (or compensated).
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Why the saga compensates (a business reason such as "insufficient_stock").
    abort_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Which way the saga was going when it FAILED: "action" or "compensation".
    failed_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The broker priority of this saga's messages (None: the default, served first on Redis).
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    # A paced saga's first step is sent to run at this time (flash sales): the sweep counts the
    # saga stale only from then on.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Last progress: the sweep re-drives sagas whose updated_at is older than the stale limit.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    steps: Mapped[list[SagaStep]] = relationship(
        lazy="selectin", order_by="SagaStep.id", cascade="all, delete-orphan"
    )

    def step(self, name: str, kind: str) -> SagaStep | None:
        return next((s for s in self.steps if s.name == name and s.kind == kind), None)


class SagaStep(Base):
    __tablename__ = "saga_steps"
    __table_args__ = (UniqueConstraint("saga_id", "name", "kind", name="uq_saga_steps_saga_id_name_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    saga_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("sagas.id"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=STEP_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
