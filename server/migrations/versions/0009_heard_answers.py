"""Heard answers: each answer a headset's dialog judged (what was heard, how sure, taken
or refused, after how many re-prompts), for the recognition figures on the console.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:45:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "heard_answers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("picker", sa.String(length=64), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=True),
        sa.Column("assignment_id", BIG_ID, nullable=True),
        sa.Column("dialog_state", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reprompts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_heard_answers_assignment_id_assignments"),
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_heard_answers_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heard_answers")),
    )
    op.create_index(op.f("ix_heard_answers_at"), "heard_answers", ["at"], unique=False)
    op.create_index(op.f("ix_heard_answers_picker"), "heard_answers", ["picker"], unique=False)
    op.create_index(
        op.f("ix_heard_answers_warehouse_id"), "heard_answers", ["warehouse_id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_heard_answers_warehouse_id"), table_name="heard_answers")
    op.drop_index(op.f("ix_heard_answers_picker"), table_name="heard_answers")
    op.drop_index(op.f("ix_heard_answers_at"), table_name="heard_answers")
    op.drop_table("heard_answers")
