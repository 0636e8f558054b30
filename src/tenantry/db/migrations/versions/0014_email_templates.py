"""email templates: tenant clones of system mail templates; sender name on queued mail; a user's
language may follow the tenant (NULL)

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db import rls

TENANT_OWNED = ["email_templates"]
LIVE = sa.text("deleted_at IS NULL")

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_templates",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_batch_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_email_templates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_email_templates")),
    )
    with op.batch_alter_table("email_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_templates_deletion_batch_id"), ["deletion_batch_id"], unique=False
        )
        batch_op.create_index(
            "uq_email_templates_live",
            ["tenant_id", "key", "language"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
    rls.enable(op.get_bind(), TENANT_OWNED)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reply_to", sa.String(length=320), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("language", existing_type=sa.String(length=8), nullable=True)


def downgrade() -> None:
    op.execute(sa.text("UPDATE users SET language = 'en' WHERE language IS NULL"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("language", existing_type=sa.String(length=8), nullable=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("reply_to")
        batch_op.drop_column("sender_name")
    rls.disable(op.get_bind(), TENANT_OWNED)
    with op.batch_alter_table("email_templates", schema=None) as batch_op:
        batch_op.drop_index("uq_email_templates_live", sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.drop_index(batch_op.f("ix_email_templates_deletion_batch_id"))
    op.drop_table("email_templates")
