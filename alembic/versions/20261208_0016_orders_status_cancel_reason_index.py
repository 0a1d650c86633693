"""orders by status and cancel reason: an index that /metrics counts them from

Each Prometheus scrape counts the orders by status and cancel reason. Without an index that
holds both, that reads the whole table; with it, only the index (an index-only scan). On
PostgreSQL it is built concurrently, so that orders keep being written while it builds on a
large table.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_orders_status_cancel_reason',
            'orders',
            ['status', 'cancel_reason'],
            unique=False,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_orders_status_cancel_reason', table_name='orders', postgresql_concurrently=True)
