"""Persisted saga state: the saga and one row per action and per compensation.

Every transition is made while holding the saga row's lock, so a step, its compensation, a
cancellation and a sweep never interleave on one saga.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, BigId, UTCDateTime, created_at_column, id_column
from app.timeutil import utcnow

# Saga statuses the engine itself gives. A definition's wait steps add their own (the order
# saga's AWAITING_PAYMENT), shown while the saga waits for an outside event.
RUNNING = "RUNNING"
COMPENSATING = "COMPENSATING"
COMPLETED = "COMPLETED"
COMPENSATED = "COMPENSATED"
FAILED = "FAILED"
ENGINE_STATUSES = (RUNNING, COMPENSATING, COMPLETED, COMPENSATED, FAILED)

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
    # What the saga is about, one saga each: the order's id for the order saga.
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False, unique=True)
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
    # A delayed saga's first step is sent to run at this time: the sweep counts the saga stale
    # only from then on.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Last progress: the sweep re-drives sagas whose updated_at is older than the stale limit.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Re-drives since the saga last moved: each doubles the wait before the next (app.backoff).
    redrives: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    steps: Mapped[list[SagaStep]] = relationship(
        lazy="selectin", order_by="SagaStep.id", cascade="all, delete-orphan"
    )

    def moved(self, at: datetime) -> None:
        """The saga made progress, or a worker reported on it: it is alive, so the stale clock
        and the re-drive back-off start again."""
        self.updated_at = at
        self.redrives = 0

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
