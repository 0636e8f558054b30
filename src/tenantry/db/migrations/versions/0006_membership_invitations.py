"""membership invitations: an existing account joins a tenant only after accepting

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db import rls

TENANT_OWNED = ["membership_invitations"]

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "membership_invitations",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role_key", sa.String(length=100), nullable=False),
        sa.Column("invited_by_id", sa.Uuid(), nullable=True),
        sa.Column("invited_by", sa.String(length=320), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_batch_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_membership_invitations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_membership_invitations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_membership_invitations")),
    )
    with op.batch_alter_table("membership_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_membership_invitations_deletion_batch_id"), ["deletion_batch_id"], unique=False
        )
        batch_op.create_index("ix_membership_invitations_user_id", ["user_id"], unique=False)
        batch_op.create_index(
            "uq_membership_invitations_live",
            ["tenant_id", "user_id"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    rls.enable(op.get_bind(), TENANT_OWNED)


def downgrade() -> None:
    rls.disable(op.get_bind(), TENANT_OWNED)
    with op.batch_alter_table("membership_invitations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_membership_invitations_live",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_membership_invitations_user_id")
        batch_op.drop_index(batch_op.f("ix_membership_invitations_deletion_batch_id"))

    op.drop_table("membership_invitations")
