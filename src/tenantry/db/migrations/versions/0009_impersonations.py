"""impersonations: a superadmin acting as another user, with a reason and an end

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
# Written next to the alias users' 0008: re-chained onto it when both are merged.
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "impersonations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("impersonator_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["impersonator_id"],
            ["users.id"],
            name=op.f("fk_impersonations_impersonator_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_impersonations_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impersonations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_impersonations_token_hash")),
    )
    with op.batch_alter_table("impersonations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_impersonations_impersonator_id"), ["impersonator_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_impersonations_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("impersonations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_impersonations_user_id"))
        batch_op.drop_index(batch_op.f("ix_impersonations_impersonator_id"))
    op.drop_table("impersonations")
