"""order payment provider: the provider the buyer chose, when several are enabled

A payment records when the provider itself expires it. Provider ids widen to 255 characters:
a Stripe Checkout Session id is longer than 64.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_provider', sa.String(length=16), nullable=True))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', app.models.base.UTCDateTime(), nullable=True))
    _widen(64, 255)


def _widen(old: int, new: int) -> None:
    for table in ('payments', 'webhook_events'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                'provider_payment_id', existing_type=sa.String(length=old), type_=sa.String(length=new)
            )


def downgrade() -> None:
    _widen(255, 64)
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('payment_provider')
