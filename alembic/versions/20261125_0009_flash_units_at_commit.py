"""flash units at commit: on PostgreSQL a deferred trigger takes a winner's units from its sale

The sale's row is then locked only while the winner's transaction commits, rather than from the
winner's UPDATE until the API process, busy with a rush of buyers, gets round to its COMMIT
(app/services/flash_sales.py, `take_units`). SQLite serialises its writers anyway: there the
UPDATE stays in Python.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 17:10:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The SQLSTATE the service maps to 409 sold-out (app/services/flash_sales.py, SOLD_OUT_SQLSTATE).
TAKE_UNITS = """
CREATE FUNCTION ordersaga_take_flash_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    units bigint;
BEGIN
    SELECT coalesce(sum(quantity), 0) INTO units FROM order_items WHERE order_id = NEW.id;
    UPDATE flash_sales SET admitted = admitted + units, updated_at = now()
     WHERE id = NEW.flash_sale_id AND admitted + units <= quantity;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flash sale % is sold out', NEW.flash_sale_id USING ERRCODE = 'OS001';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER orders_take_flash_units AFTER INSERT ON orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.flash_sale_id IS NOT NULL)
    EXECUTE FUNCTION ordersaga_take_flash_units();
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(TAKE_UNITS)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER orders_take_flash_units ON orders')
        op.execute('DROP FUNCTION ordersaga_take_flash_units()')
