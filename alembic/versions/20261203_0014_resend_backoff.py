"""resend back-off: how often the sweep re-drove a saga since it last moved, re-queued an
overdue order's timeout, and re-queued a confirmed order's points

Each resend doubles the wait before the next (app/backoff.py), so that a backlog longer than
the stale limit is not handed a duplicate of every waiting message each period.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 21:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sagas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redrives', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timeout_requeues', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('points_requeues', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('points_requeues')
        batch_op.drop_column('timeout_requeues')
    with op.batch_alter_table('sagas', schema=None) as batch_op:
        batch_op.drop_column('redrives')
