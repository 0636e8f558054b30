"""The resource type registry: schema, per-tenant unique fields, parent type, references."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, Timestamped
from tenantry.db.types import JSONType


class ResourceType(Timestamped, Base):
    __tablename__ = "resource_types"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    schema: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    unique_fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    parent_type: Mapped[str | None] = mapped_column(String(64), default=None)
    cascade_delete: Mapped[bool] = mapped_column(default=False)
    # attribute name → resource type key it must point at (same tenant, live).
    references: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    builtin: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
