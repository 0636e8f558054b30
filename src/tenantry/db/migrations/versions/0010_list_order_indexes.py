"""resources: index (tenant_id, name, id), the list's keyset order

A page of a tenant's resources sorted on (name, id) read the whole tenant and sorted it;
with this index it reads the page. Memberships already have (tenant_id, user_id).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.create_index("ix_resources_tenant_id_name_id", ["tenant_id", "name", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.drop_index("ix_resources_tenant_id_name_id")
