"""Changing the settings catalog's values from tests, through the service (audited, versioned)."""

from __future__ import annotations

import uuid
from typing import Any

from tenantry.authz import system_principal
from tenantry.db.session import Database
from tenantry.db.tables import Tenant
from tenantry.services import settings
from tenantry.services.context import ServiceContext


def set_tenant_settings(db: Database, tenant_id: uuid.UUID, category: str, **values: Any) -> None:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        ctx.enter(tenant)
        settings.update_tenant_settings(ctx, tenant, category, values)


def set_system_settings(db: Database, category: str, **values: Any) -> None:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        settings.update_system_settings(ctx, category, values)


def require_2fa(db: Database, tenant_id: uuid.UUID) -> None:
    set_tenant_settings(db, tenant_id, "security", require_2fa=True)
