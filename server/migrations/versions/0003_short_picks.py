"""Short picks: order lines record the units no slot could give (`quantity_short`), and an
allocation may drop to 0 when none of its units were found.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 03:40:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quantity_short", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_order_lines_short_within_quantity"),
            "quantity_short >= 0 AND quantity_allocated + quantity_short <= quantity",
        )

    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_allocations_quantity_positive"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_allocations_quantity_not_negative"), "quantity >= 0"
        )


def downgrade() -> None:
    """Downgrade schema. Refused by the database while an allocation holds 0 units (its
    pick lines still point at it)."""
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_allocations_quantity_not_negative"), type_="check")
        batch_op.create_check_constraint(op.f("ck_allocations_quantity_positive"), "quantity > 0")

    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_order_lines_short_within_quantity"), type_="check")
        batch_op.drop_column("quantity_short")
