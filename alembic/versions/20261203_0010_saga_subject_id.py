"""saga subject id: a saga is keyed by what it is about, not by an order

The engine runs any saga definition; the order saga's subject is its order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 07:30:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _rename('order_id', 'subject_id')


def downgrade() -> None:
    _rename('subject_id', 'order_id')


def _rename(old: str, new: str) -> None:
    # Two batches: on SQLite each one copies the table, and the new constraint must name the
    # column under its new name.
    with op.batch_alter_table('sagas', schema=None) as batch_op:
        batch_op.drop_constraint(f'uq_sagas_{old}', type_='unique')
        batch_op.alter_column(old, new_column_name=new)
    with op.batch_alter_table('sagas', schema=None) as batch_op:
        batch_op.create_unique_constraint(f'uq_sagas_{new}', [new])
