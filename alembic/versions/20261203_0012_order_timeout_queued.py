"""order timeout queued: the payment timeout's ETA task is queued only once the deadline is near

Orders awaiting payment at the upgrade had theirs queued on entering AWAITING_PAYMENT.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('timeout_queued', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index('ix_orders_status_payment_deadline', ['status', 'payment_deadline'])
    op.execute("UPDATE orders SET timeout_queued = true WHERE status = 'AWAITING_PAYMENT'")


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_status_payment_deadline')
        batch_op.drop_column('timeout_queued')
