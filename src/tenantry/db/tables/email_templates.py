"""A tenant's own version of a system mail template (issue 11): one per kind and language.

Deleting it (soft) makes the tenant's mail fall back to the system template.
"""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned, Timestamped


class EmailTemplate(TenantOwned, Timestamped, SoftDeletable, Base):
    __tablename__ = "email_templates"

    key: Mapped[str] = mapped_column(String(40))  # the mail kind: invitation, password_reset, …
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(
            "uq_email_templates_live",
            "tenant_id",
            "key",
            "language",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
