"""resources: type registry, per-tenant unique values, shared resources, deletion batches

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:04:42.526229
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenantry.db import rls

TENANT_OWNED = ["resource_unique_values", "shared_resource_assignments"]

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deletion_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("root_type", sa.String(length=32), nullable=False),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("root_name", sa.String(length=320), nullable=False),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("deleted_by_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_by", sa.String(length=320), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purge_locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletion_batches")),
    )
    with op.batch_alter_table("deletion_batches", schema=None) as batch_op:
        batch_op.create_index("ix_deletion_batches_purge_after", ["purge_after"], unique=False)
        batch_op.create_index(
            "ix_deletion_batches_tenant_id_deleted_at", ["tenant_id", "deleted_at"], unique=False
        )

    op.create_table(
        "resource_types",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "unique_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("parent_type", sa.String(length=64), nullable=True),
        sa.Column("cascade_delete", sa.Boolean(), nullable=False),
        sa.Column(
            "references",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_resource_types")),
    )
    op.create_table(
        "shared_resources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_batch_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_resources")),
    )
    with op.batch_alter_table("shared_resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shared_resources_deletion_batch_id"), ["deletion_batch_id"], unique=False
        )

    op.create_table(
        "shared_resource_assignments",
        sa.Column("shared_resource_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_batch_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["shared_resource_id"],
            ["shared_resources.id"],
            name=op.f("fk_shared_resource_assignments_shared_resource_id_shared_resources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_shared_resource_assignments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_shared_resource_assignments")),
    )
    with op.batch_alter_table("shared_resource_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shared_resource_assignments_deletion_batch_id"),
            ["deletion_batch_id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_shared_resource_assignments_live",
            ["shared_resource_id", "tenant_id"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "resource_unique_values",
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_batch_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "resource_id"],
            ["resources.tenant_id", "resources.id"],
            name=op.f("fk_resource_unique_values_tenant_id_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_resource_unique_values")),
    )
    with op.batch_alter_table("resource_unique_values", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resource_unique_values_deletion_batch_id"), ["deletion_batch_id"], unique=False
        )
        batch_op.create_index(
            "ix_resource_unique_values_resource", ["tenant_id", "resource_id"], unique=False
        )
        batch_op.create_index(
            "uq_resource_unique_values_live",
            ["tenant_id", "type", "field", "value"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    rls.enable(op.get_bind(), TENANT_OWNED)


def downgrade() -> None:
    rls.disable(op.get_bind(), TENANT_OWNED)
    with op.batch_alter_table("resource_unique_values", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_resource_unique_values_live",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_resource_unique_values_resource")
        batch_op.drop_index(batch_op.f("ix_resource_unique_values_deletion_batch_id"))

    op.drop_table("resource_unique_values")
    with op.batch_alter_table("shared_resource_assignments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_shared_resource_assignments_live",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_shared_resource_assignments_deletion_batch_id"))

    op.drop_table("shared_resource_assignments")
    with op.batch_alter_table("shared_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shared_resources_deletion_batch_id"))

    op.drop_table("shared_resources")
    op.drop_table("resource_types")
    with op.batch_alter_table("deletion_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_deletion_batches_tenant_id_deleted_at")
        batch_op.drop_index("ix_deletion_batches_purge_after")

    op.drop_table("deletion_batches")
