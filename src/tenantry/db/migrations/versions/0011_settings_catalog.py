"""settings catalog: system values, tenant overrides, a settings version; tenants.require_2fa moves in

The per-tenant 2FA flag becomes the `security.require_2fa` override of the tenants that had it
switched on; the column goes.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from tenantry.db import rls
from tenantry.db.types import JSONType, UTCDateTime
from tenantry.ids import uuid7

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_OWNED = ["tenant_settings"]


def upgrade() -> None:
    op.create_table(
        "system_settings",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", JSONType, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("category", "key", name=op.f("pk_system_settings")),
    )
    op.create_table(
        "tenant_settings",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", JSONType, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_tenant_settings")),
        sa.UniqueConstraint(
            "tenant_id", "category", "key", name=op.f("uq_tenant_settings_tenant_id_category_key")
        ),
    )
    with op.batch_alter_table("authz_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settings_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("authz_state", schema=None) as batch_op:
        batch_op.alter_column("settings_version", server_default=None)

    # Today's values: every tenant that required 2FA gets the override.
    conn = op.get_bind()
    tenants = sa.table("tenants", sa.column("id", sa.Uuid()), sa.column("require_2fa", sa.Boolean()))
    ids = [row.id for row in conn.execute(sa.select(tenants.c.id).where(tenants.c.require_2fa.is_(True)))]
    # Security/data: a plain DROP COLUMN, never batch mode's copy-and-drop of `tenants`: with
    # SQLite's foreign keys on, dropping the old table would cascade-delete every tenant's
    # memberships, resources, overrides... (SQLite 3.35+ drops a column in place).
    op.drop_column("tenants", "require_2fa")
    overrides = sa.table(
        "tenant_settings",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        sa.column("category", sa.String()),
        sa.column("key", sa.String()),
        sa.column("value", JSONType),
        sa.column("updated_at", UTCDateTime()),
    )
    now = datetime.now(UTC)
    if ids:
        # Before RLS is on: FORCEd policies bind the owner too.
        op.bulk_insert(
            overrides,
            [
                {
                    "tenant_id": tid,
                    "id": uuid7(),
                    "category": "security",
                    "key": "require_2fa",
                    "value": True,
                    "updated_at": now,
                }
                for tid in ids
            ],
        )
    rls.enable(conn, TENANT_OWNED)


def downgrade() -> None:
    conn = op.get_bind()
    rls.disable(conn, TENANT_OWNED)
    overrides = sa.table(
        "tenant_settings",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("category", sa.String()),
        sa.column("key", sa.String()),
        sa.column("value", JSONType),
    )
    required = [
        row.tenant_id
        for row in conn.execute(
            sa.select(overrides.c.tenant_id, overrides.c.value).where(
                overrides.c.category == "security", overrides.c.key == "require_2fa"
            )
        )
        if row.value is True
    ]
    # In place (see upgrade); the server default stays: SQLite cannot drop it without a copy.
    op.add_column(
        "tenants", sa.Column("require_2fa", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    if required:
        tenants = sa.table("tenants", sa.column("id", sa.Uuid()), sa.column("require_2fa", sa.Boolean()))
        conn.execute(sa.update(tenants).where(tenants.c.id.in_(required)).values(require_2fa=True))
    with op.batch_alter_table("authz_state", schema=None) as batch_op:
        batch_op.drop_column("settings_version")
    op.drop_table("tenant_settings")
    op.drop_table("system_settings")
