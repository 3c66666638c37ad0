"""Exception decisions: how an exception was settled (noted, short accepted, stock
adjusted, recount sent), in which room, and the ledger entry the decision wrote.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("room_id", BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("movement_id", BIG_ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_exceptions_room_id_rooms"), "rooms", ["room_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_exceptions_movement_id_movements"), "movements", ["movement_id"], ["id"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_exceptions_movement_id_movements"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_exceptions_room_id_rooms"), type_="foreignkey")
        batch_op.drop_column("movement_id")
        batch_op.drop_column("room_id")
        batch_op.drop_column("outcome")
