"""Built-in roles: immutable, documented permission sets."""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.authz.catalog import CATALOG, RESOURCE_TYPES, Perm, resource_perm


@dataclass(frozen=True)
class BuiltinRole:
    key: str
    name: str
    description: str
    static: frozenset[str]
    resource_actions: frozenset[str]
    global_only: bool = False

    def permissions(self) -> frozenset[str]:
        if self.key == "superadmin":
            return frozenset(CATALOG)
        generated = {resource_perm(t, a) for t in RESOURCE_TYPES for a in self.resource_actions}
        return self.static | generated


_READ = frozenset({Perm.TENANT_READ, Perm.MEMBER_READ, Perm.ROLE_READ, Perm.SHARED_RESOURCE_READ})

BUILTIN_ROLES: dict[str, BuiltinRole] = {
    r.key: r
    for r in [
        BuiltinRole("superadmin", "Superadmin", "Everything, everywhere", frozenset(), frozenset(), True),
        BuiltinRole(
            "tenant_admin",
            "Tenant admin",
            "Runs one tenant: members, roles, settings, trash, audit and all resources",
            _READ
            | {
                Perm.TENANT_UPDATE,
                Perm.MEMBER_MANAGE,
                Perm.ROLE_MANAGE,
                Perm.GRANT_READ,
                Perm.GRANT_MANAGE,
                Perm.AUDIT_READ,
                Perm.SETTINGS_READ,
                Perm.SETTINGS_UPDATE,
                Perm.TEMPLATE_MANAGE,
                Perm.TRASH_READ,
                Perm.TRASH_RESTORE,
                Perm.TRASH_PURGE,
                Perm.ALIAS_MANAGE,
            },
            frozenset({"read", "create", "update", "delete"}),
        ),
        BuiltinRole(
            "member",
            "Member",
            "Works with the tenant's resources",
            _READ | {Perm.SETTINGS_READ, Perm.ALIAS_MANAGE},
            frozenset({"read", "create", "update", "delete"}),
        ),
        BuiltinRole(
            "viewer", "Viewer", "Reads everything in the tenant, changes nothing", _READ, frozenset({"read"})
        ),
        BuiltinRole(
            "auditor",
            "Auditor",
            "Reads the audit log and the tenant's configuration",
            _READ | {Perm.AUDIT_READ, Perm.GRANT_READ, Perm.SETTINGS_READ, Perm.TRASH_READ},
            frozenset({"read"}),
        ),
    ]
}
