"""The authorization engine: decisions live here and nowhere else."""

from tenantry.authz.catalog import CATALOG, Perm, PermInfo
from tenantry.authz.engine import (
    check,
    effective_permissions,
    is_member,
    mark_decided,
    require,
    require_authenticated,
)
from tenantry.authz.principal import Principal, system_principal
from tenantry.authz import visibility  # noqa: E402

__all__ = [
    "CATALOG",
    "Perm",
    "PermInfo",
    "Principal",
    "check",
    "effective_permissions",
    "is_member",
    "mark_decided",
    "require",
    "require_authenticated",
    "system_principal",
]
