"""alias users: a parent and an alias role on users, and their resource assignments

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("alias_role_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_users_parent_id_users"), "users", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_users_alias_role_id_alias_roles"),
            "alias_roles",
            ["alias_role_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "alias_resources",
        sa.Column("alias_id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alias_id"], ["users.id"], name=op.f("fk_alias_resources_alias_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "resource_id"],
            ["resources.tenant_id", "resources.id"],
            name=op.f("fk_alias_resources_tenant_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alias_id", "resource_id", name=op.f("pk_alias_resources")),
    )


def downgrade() -> None:
    op.drop_table("alias_resources")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_users_alias_role_id_alias_roles"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_users_parent_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_users_parent_id"))
        batch_op.drop_column("alias_role_id")
        batch_op.drop_column("parent_id")
