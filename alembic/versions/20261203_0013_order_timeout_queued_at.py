"""order timeout queued at: when the payment timeout's task was last queued, not only whether

The sweep's backstop for a lost timeout queues an overdue order's timeout again only if it was
queued before the deadline or longer ago than the stale limit, so that a worker behind on due
timeouts is not handed the same orders each sweep. Orders whose timeout was queued at the
upgrade count as queued when they last changed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timeout_queued_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET timeout_queued_at = updated_at WHERE timeout_queued")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('timeout_queued')


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('timeout_queued', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE orders SET timeout_queued = true WHERE timeout_queued_at IS NOT NULL")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('timeout_queued_at')
