"""Session revocation: users carry a token version (raised on password, role and status
changes, revoking older tokens), and one-use socket tickets replace tokens in socket URLs.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 13:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "socket_tickets",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_socket_tickets")),
    )
    op.create_index(
        op.f("ix_socket_tickets_expires_at"), "socket_tickets", ["expires_at"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_socket_tickets_expires_at"), table_name="socket_tickets")
    op.drop_table("socket_tickets")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_version")
