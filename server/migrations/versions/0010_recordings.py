"""Call recordings: a warehouse may record its video rooms' calls; each participant's audio
and video is a file, listed here and kept for a set number of days.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 21:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("warehouses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("record_calls", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "recordings",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("room_id", BIG_ID, nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("participant", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_recordings_room_id_rooms")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"], name=op.f("fk_recordings_warehouse_id_warehouses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    op.create_index(op.f("ix_recordings_room_id"), "recordings", ["room_id"], unique=False)
    op.create_index(op.f("ix_recordings_started_at"), "recordings", ["started_at"], unique=False)
    op.create_index(
        op.f("ix_recordings_warehouse_id"), "recordings", ["warehouse_id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_recordings_warehouse_id"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_started_at"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_room_id"), table_name="recordings")
    op.drop_table("recordings")
    with op.batch_alter_table("warehouses", schema=None) as batch_op:
        batch_op.drop_column("record_calls")
