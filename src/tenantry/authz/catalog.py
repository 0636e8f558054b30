"""The permission catalog: every permission once, with description, risk and allowed scopes.

The API's `/permissions`, role validation and the "acknowledge risk" warning read this table and
nothing else re-describes a permission. Resource permissions (`host.read`, …) are generated per
resource type by `register_resource_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Risk = Literal["normal", "sensitive", "dangerous"]
Scope = Literal["global", "tenant", "resource"]

RESOURCE_ACTIONS = ("read", "create", "update", "delete")


class Perm(StrEnum):
    TENANT_CREATE = "tenant.create"
    TENANT_READ = "tenant.read"
    TENANT_UPDATE = "tenant.update"
    TENANT_SUSPEND = "tenant.suspend"
    TENANT_DELETE = "tenant.delete"
    TENANT_CROSS_VIEW = "tenant.cross_view"
    USER_READ = "user.read"
    USER_MANAGE = "user.manage"
    MEMBER_READ = "member.read"
    MEMBER_MANAGE = "member.manage"
    ROLE_READ = "role.read"
    ROLE_MANAGE = "role.manage"
    GRANT_READ = "grant.read"
    GRANT_MANAGE = "grant.manage"
    GROUP_MANAGE = "group.manage"
    AUDIT_READ = "audit.read"
    SETTINGS_READ = "settings.read"
    SETTINGS_UPDATE = "settings.update"
    SYSTEM_SETTINGS_UPDATE = "system_settings.update"
    TEMPLATE_MANAGE = "template.manage"
    TRASH_READ = "trash.read"
    TRASH_RESTORE = "trash.restore"
    TRASH_PURGE = "trash.purge"
    RESOURCE_TYPE_MANAGE = "resource_type.manage"
    SHARED_RESOURCE_MANAGE = "shared_resource.manage"
    SHARED_RESOURCE_READ = "shared_resource.read"
    ALIAS_MANAGE = "alias.manage"
    IMPERSONATE = "impersonate"


@dataclass(frozen=True)
class PermInfo:
    key: str
    description: str
    risk: Risk
    scopes: tuple[Scope, ...]
    read_only: bool  # allowed for a `read`-scoped API key

    @property
    def area(self) -> str:
        return self.key.split(".", 1)[0]


_G: tuple[Scope, ...] = ("global",)
_GT: tuple[Scope, ...] = ("global", "tenant")
_GTR: tuple[Scope, ...] = ("global", "tenant", "resource")

_STATIC: list[PermInfo] = [
    PermInfo(Perm.TENANT_CREATE, "Create tenants", "sensitive", _G, False),
    PermInfo(Perm.TENANT_READ, "See a tenant's profile", "normal", _GT, True),
    PermInfo(
        Perm.TENANT_UPDATE, "Rename a tenant, change its description and branding", "normal", _GT, False
    ),
    PermInfo(Perm.TENANT_SUSPEND, "Suspend or reactivate a tenant", "dangerous", _G, False),
    PermInfo(Perm.TENANT_DELETE, "Move a tenant and everything in it to the trash", "dangerous", _G, False),
    PermInfo(Perm.TENANT_CROSS_VIEW, "See every tenant read-only without membership", "sensitive", _G, True),
    PermInfo(Perm.USER_READ, "List and see user accounts", "normal", _G, True),
    PermInfo(Perm.USER_MANAGE, "Create, change and delete user accounts", "dangerous", _G, False),
    PermInfo(Perm.MEMBER_READ, "See a tenant's members", "normal", _GT, True),
    PermInfo(Perm.MEMBER_MANAGE, "Add, remove and change members of a tenant", "sensitive", _GT, False),
    PermInfo(Perm.ROLE_READ, "See roles", "normal", _GT, True),
    PermInfo(Perm.ROLE_MANAGE, "Create and change custom roles", "sensitive", _GT, False),
    PermInfo(Perm.GRANT_READ, "See who holds which role", "normal", _GTR, True),
    PermInfo(Perm.GRANT_MANAGE, "Grant and revoke roles", "sensitive", _GTR, False),
    PermInfo(Perm.GROUP_MANAGE, "Create groups and change their members", "sensitive", _G, False),
    PermInfo(Perm.AUDIT_READ, "Read the audit log", "sensitive", _GT, True),
    PermInfo(Perm.SETTINGS_READ, "Read settings", "normal", _GT, True),
    PermInfo(Perm.SETTINGS_UPDATE, "Override tenant settings", "sensitive", _GT, False),
    PermInfo(Perm.SYSTEM_SETTINGS_UPDATE, "Change system-wide settings", "dangerous", _G, False),
    PermInfo(Perm.TEMPLATE_MANAGE, "Edit email templates", "normal", _GT, False),
    PermInfo(Perm.TRASH_READ, "See the trash", "normal", _GT, True),
    PermInfo(Perm.TRASH_RESTORE, "Restore from the trash", "sensitive", _GT, False),
    PermInfo(Perm.TRASH_PURGE, "Delete from the trash for ever", "dangerous", _GT, False),
    PermInfo(Perm.RESOURCE_TYPE_MANAGE, "Define resource types", "dangerous", _G, False),
    PermInfo(
        Perm.SHARED_RESOURCE_MANAGE, "Manage shared resources and their tenant slots", "sensitive", _G, False
    ),
    PermInfo(Perm.SHARED_RESOURCE_READ, "See shared resources assigned to the tenant", "normal", _GT, True),
    PermInfo(Perm.ALIAS_MANAGE, "Create and manage one's alias users", "sensitive", _GT, False),
    PermInfo(Perm.IMPERSONATE, "Act as another user", "dangerous", _G, False),
]

CATALOG: dict[str, PermInfo] = {p.key: p for p in _STATIC}
RESOURCE_TYPES: set[str] = set()

_ACTION_TEXT = {"read": "See", "create": "Create", "update": "Change", "delete": "Delete"}


def resource_perm(type_key: str, action: str) -> str:
    return f"{type_key}.{action}"


def register_resource_type(type_key: str) -> None:
    """Generate `<type>.read|create|update|delete` for a resource type."""
    RESOURCE_TYPES.add(type_key)
    for action in RESOURCE_ACTIONS:
        key = resource_perm(type_key, action)
        risk: Risk = "sensitive" if action == "delete" else "normal"
        CATALOG[key] = PermInfo(
            key, f"{_ACTION_TEXT[action]} {type_key} resources", risk, _GTR, action == "read"
        )


for _builtin_type in ("host", "service", "alert", "server", "project", "inventory", "deployment"):
    register_resource_type(_builtin_type)


def info(perm: str) -> PermInfo:
    try:
        return CATALOG[perm]
    except KeyError:
        raise ValueError(f"unknown permission {perm!r}") from None


def dangerous(perms: set[str] | frozenset[str]) -> list[str]:
    return sorted(p for p in perms if p in CATALOG and CATALOG[p].risk == "dangerous")
