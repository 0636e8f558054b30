"""The authorization engine: decisions live here and nowhere else."""

from tenantry.authz import visibility
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
    "visibility",
]
