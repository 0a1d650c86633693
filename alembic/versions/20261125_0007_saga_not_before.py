"""saga not_before: when a paced saga's first step is due

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sagas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', app.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sagas', schema=None) as batch_op:
        batch_op.drop_column('not_before')
