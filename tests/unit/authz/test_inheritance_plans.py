"""Inheritance plans for the authorization engine (DESIGN §1 "Grant", STYLE point 14).

Each plan is data: steps that add memberships, groups, custom roles and grants to a small world
(tenants acme and globex with the same resource tree), each followed by the `check()` outcomes
expected after it. `execute_plan` builds the world in the real database, commits each step in
its own transaction (bumping the authorization version as every service does) and asks the
real engine. Every expectation is computed twice from an empty cache, in a session armed for
the tenant in question (as a request is) and in an unarmed one: results are cached per
principal and scope, so the answer must not depend on how the asking session is scoped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tenantry.authz import Principal, engine
from tenantry.authz import cache as authz_cache
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import (
    GlobalGrant,
    Grant,
    Group,
    GroupMember,
    Membership,
    Resource,
    Role,
    Tenant,
    TenantRole,
    User,
)
from tenantry.db.types import utcnow
from tenantry.ids import uuid7

TENANTS = ("acme", "globex")
USERS = ("alice", "bob", "carol", "root")  # root is a superadmin
SUPERADMINS = frozenset({"root"})

# name → parent, parents first. The same tree exists in both tenants ("acme:host", "globex:host").
#   site ─┬─ host ──── service ─── alert
#         └─ host2 ─── service2
#   lone
TREE: dict[str, str | None] = {
    "site": None,
    "host": "site",
    "service": "host",
    "alert": "service",
    "host2": "site",
    "service2": "host2",
    "lone": None,
}

Check = tuple[str, str, str | None, bool]  # (who, permission, where, allowed)

PLANS: list[dict[str, Any]] = [
    {
        "id": "global_grant_covers_every_tenant_without_membership",
        "steps": [
            {
                "grants": [("alice", "viewer", "global"), ("bob", "tenant_admin", "global")],
                "expect": [
                    ("alice", "tenant.read", None, True),
                    ("alice", "tenant.read", "acme", True),
                    ("alice", "tenant.read", "globex", True),
                    ("alice", "host.read", "globex:alert", True),
                    ("alice", "host.update", "acme:host", False),
                    ("bob", "member.manage", "globex", True),
                    ("bob", "host.delete", "acme:service2", True),
                    ("bob", "tenant.delete", "acme", False),
                ],
            }
        ],
    },
    {
        "id": "tenant_grant_covers_all_its_resources_and_nothing_else",
        "steps": [
            {
                "members": [("alice", "acme")],
                "grants": [("alice", "member", "acme")],
                "expect": [
                    ("alice", "host.update", "acme", True),
                    ("alice", "host.update", "acme:site", True),
                    ("alice", "host.delete", "acme:alert", True),
                    ("alice", "host.read", "acme:lone", True),
                    ("alice", "member.manage", "acme", False),
                    ("alice", "tenant.read", "globex", False),
                    ("alice", "host.read", "globex:host", False),
                    ("alice", "tenant.read", None, False),
                ],
            }
        ],
    },
    {
        "id": "resource_grant_covers_children_and_grandchildren_only",
        "steps": [
            {
                "members": [("alice", "acme")],
                "grants": [("alice", "viewer", "acme:host")],
                "expect": [
                    ("alice", "host.read", "acme:host", True),
                    ("alice", "host.read", "acme:service", True),
                    ("alice", "host.read", "acme:alert", True),
                    ("alice", "host.read", "acme:site", False),  # the parent
                    ("alice", "host.read", "acme:host2", False),  # a sibling
                    ("alice", "host.read", "acme:service2", False),  # the sibling's child
                    ("alice", "host.read", "acme:lone", False),
                    ("alice", "host.read", "acme", False),  # not the whole tenant
                    ("alice", "host.update", "acme:service", False),  # viewer reads only
                    ("alice", "host.read", "globex:host", False),  # same name, other tenant
                ],
            }
        ],
    },
    {
        "id": "resource_grant_on_a_leaf_does_not_climb",
        "steps": [
            {
                "members": [("alice", "acme")],
                "grants": [("alice", "member", "acme:alert")],
                "expect": [
                    ("alice", "host.update", "acme:alert", True),
                    ("alice", "host.update", "acme:service", False),
                    ("alice", "host.update", "acme:host", False),
                    ("alice", "host.update", "acme:site", False),
                ],
            }
        ],
    },
    {
        "id": "tenant_and_resource_grants_need_a_membership",
        "steps": [
            {
                "grants": [("alice", "member", "acme"), ("bob", "viewer", "acme:host")],
                "expect": [
                    ("alice", "host.read", "acme", False),
                    ("alice", "host.read", "acme:host", False),
                    ("bob", "host.read", "acme:host", False),
                    ("bob", "host.read", "acme:service", False),
                ],
            },
            {
                "members": [("alice", "acme"), ("bob", "acme")],
                "expect": [
                    ("alice", "host.read", "acme", True),
                    ("bob", "host.read", "acme:service", True),
                ],
            },
            {
                "remove_members": [("alice", "acme"), ("bob", "acme")],
                "expect": [
                    ("alice", "host.read", "acme", False),
                    ("bob", "host.read", "acme:service", False),
                ],
            },
        ],
    },
    {
        "id": "membership_alone_grants_nothing",
        "steps": [
            {
                "members": [("alice", "acme")],
                "expect": [
                    ("alice", "tenant.read", "acme", False),
                    ("alice", "host.read", "acme:host", False),
                ],
            }
        ],
    },
    {
        "id": "group_grant_reaches_members_and_stops_when_removed_from_the_group",
        "steps": [
            {
                "members": [("alice", "acme"), ("bob", "acme"), ("carol", "acme")],
                "groups": {"ops": ["alice", "bob"]},
                "grants": [("ops", "member", "acme")],
                "expect": [
                    ("alice", "host.update", "acme:service", True),
                    ("bob", "host.update", "acme", True),
                    ("carol", "host.update", "acme", False),  # a member, but not in the group
                ],
            },
            {
                "leave": [("alice", "ops")],
                "expect": [
                    ("alice", "host.update", "acme:service", False),
                    ("bob", "host.update", "acme", True),
                ],
            },
        ],
    },
    {
        "id": "group_grant_stops_when_the_group_is_deleted",
        "steps": [
            {
                "members": [("alice", "acme")],
                "groups": {"ops": ["alice"], "dev": ["alice"]},
                "grants": [("ops", "auditor", "global"), ("dev", "member", "acme:host")],
                "expect": [
                    ("alice", "audit.read", "globex", True),
                    ("alice", "host.update", "acme:alert", True),
                ],
            },
            {
                "delete_groups": ["ops", "dev"],
                "expect": [
                    ("alice", "audit.read", "globex", False),
                    ("alice", "host.update", "acme:alert", False),
                ],
            },
        ],
    },
    {
        "id": "group_grant_in_a_tenant_reaches_only_members_of_that_tenant",
        "steps": [
            {
                "members": [("alice", "acme")],
                "groups": {"ops": ["alice", "bob"]},
                "grants": [("ops", "viewer", "acme:host2")],
                "expect": [
                    ("alice", "host.read", "acme:service2", True),
                    ("alice", "host.read", "acme:host", False),
                    ("bob", "host.read", "acme:service2", False),  # in the group, not in acme
                ],
            }
        ],
    },
    {
        "id": "custom_roles_inherit_like_built_in_ones",
        "steps": [
            {
                "roles": {"deployer": ["host.read", "host.update"], "acme:lead": ["member.manage"]},
                "members": [("alice", "acme"), ("alice", "globex")],
                "grants": [
                    ("alice", "deployer", "acme:host"),
                    ("alice", "lead", "acme"),
                    ("alice", "lead", "globex"),  # acme's role means nothing in globex
                ],
                "expect": [
                    ("alice", "host.update", "acme:service", True),
                    ("alice", "host.delete", "acme:service", False),
                    ("alice", "host.update", "acme:host2", False),
                    ("alice", "member.manage", "acme", True),
                    ("alice", "member.manage", "globex", False),
                ],
            },
            {
                "roles": {"deployer": ["host.read"]},
                "expect": [
                    ("alice", "host.update", "acme:service", False),
                    ("alice", "host.read", "acme:service", True),
                ],
            },
        ],
    },
    {
        "id": "revoked_grants_stop_at_once",
        "steps": [
            {
                "members": [("alice", "acme")],
                "grants": [("alice", "member", "acme"), ("bob", "viewer", "global")],
                "expect": [("alice", "host.update", "acme", True), ("bob", "tenant.read", "globex", True)],
            },
            {
                "revoke": [("alice", "member", "acme"), ("bob", "viewer", "global")],
                "expect": [("alice", "host.update", "acme", False), ("bob", "tenant.read", "globex", False)],
            },
        ],
    },
    {
        "id": "read_scoped_key_keeps_only_read_permissions",
        "steps": [
            {
                "members": [("alice", "acme")],
                "grants": [("alice", "tenant_admin", "acme")],
                "expect": [
                    ("alice", "host.update", "acme:host", True),
                    ("alice[read]", "host.read", "acme:host", True),
                    ("alice[read]", "member.read", "acme", True),
                    ("alice[read]", "host.update", "acme:host", False),
                    ("alice[read]", "member.manage", "acme", False),
                    ("root[read]", "user.read", None, True),
                    ("root[read]", "user.manage", None, False),
                    ("root[read]", "host.delete", "globex:alert", False),
                ],
            }
        ],
    },
    {
        "id": "key_restricted_to_a_tenant_acts_nowhere_else",
        "steps": [
            {
                "members": [("alice", "acme"), ("alice", "globex")],
                "grants": [
                    ("alice", "member", "acme"),
                    ("alice", "member", "globex"),
                    ("bob", "viewer", "global"),
                ],
                "expect": [
                    ("alice[acme]", "host.update", "acme:host", True),
                    ("alice[acme]", "host.update", "globex:host", False),
                    ("alice[acme]", "tenant.read", "globex", False),
                    ("bob[acme]", "tenant.read", "acme", True),
                    ("bob[acme]", "tenant.read", "globex", False),
                    ("bob[acme]", "tenant.read", None, False),
                    ("root[globex]", "tenant.update", "globex", True),
                    ("root[globex]", "tenant.update", "acme", False),
                ],
            }
        ],
    },
    {
        "id": "superadmin_holds_every_permission_everywhere",
        "steps": [
            {
                "expect": [
                    ("root", "tenant.delete", None, True),
                    ("root", "impersonate", None, True),
                    ("root", "tenant.update", "acme", True),
                    ("root", "host.delete", "globex:alert", True),
                    ("root", "trash.purge", "acme", True),
                ],
            }
        ],
    },
    {
        "id": "deny_by_default",
        "steps": [
            {
                "expect": [
                    ("alice", "tenant.read", "acme", False),
                    ("alice", "host.read", "acme:host", False),
                    ("alice", "tenant.read", None, False),
                    ("anonymous", "tenant.read", "acme", False),
                    ("anonymous", "host.read", "acme:host", False),
                ],
            }
        ],
    },
]


# --- the executor ------------------------------------------------------------------------------


@dataclass
class World:
    tenants: dict[str, uuid.UUID] = field(default_factory=dict)
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    resources: dict[str, uuid.UUID] = field(default_factory=dict)  # "acme:host" → id
    groups: dict[str, uuid.UUID] = field(default_factory=dict)

    def tenant_and_resource(self, where: str | None) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        if where is None or where == "global":
            return None, None
        slug, _, name = where.partition(":")
        return self.tenants[slug], (self.resources[where] if name else None)

    def principal_ref(self, name: str) -> tuple[str, uuid.UUID]:
        return ("group", self.groups[name]) if name in self.groups else ("user", self.users[name])

    def principal(self, who: str) -> Principal:
        """`alice`; `alice[read]` (a read-scoped key); `alice[acme]` (a key restricted to acme)."""
        if who == "anonymous":
            return Principal.nobody()
        name, _, variant = who.rstrip("]").partition("[")
        extra: dict[str, Any] = {}
        if variant == "read":
            extra = {"key_id": uuid7(), "key_scope": "read"}
        elif variant:
            extra = {"key_id": uuid7(), "key_tenant_id": self.tenants[variant]}
        return Principal(
            kind="user", user_id=self.users[name], label=who, is_superadmin=name in SUPERADMINS, **extra
        )


def build_world(db: Database) -> World:
    world = World()
    with db.unit_of_work() as s:
        for slug in TENANTS:
            tenant = Tenant(slug=slug, name=slug.title())
            s.add(tenant)
            s.flush()
            world.tenants[slug] = tenant.id
        for name in USERS:
            user = User(email=f"{name}@plans.example.com", is_superadmin=name in SUPERADMINS)
            s.add(user)
            s.flush()
            world.users[name] = user.id
        for slug, tenant_id in world.tenants.items():
            with scoping.in_tenant(s, tenant_id):
                for name, parent in TREE.items():
                    resource = Resource(
                        tenant_id=tenant_id,
                        type="host",
                        name=name,
                        parent_id=world.resources[f"{slug}:{parent}"] if parent else None,
                    )
                    s.add(resource)
                    s.flush()
                    world.resources[f"{slug}:{name}"] = resource.id
    return world


def _set_role(s: Session, world: World, ref: str, permissions: list[str]) -> None:
    slug, _, key = ref.rpartition(":")
    if not slug:
        role = s.scalar(select(Role).where(Role.key == key))
        if role is None:
            s.add(Role(key=key, name=key, permissions=permissions))
        else:
            role.permissions = permissions
        return
    with scoping.in_tenant(s, world.tenants[slug]):
        trole = s.scalar(select(TenantRole).where(TenantRole.key == key))
        if trole is None:
            s.add(TenantRole(tenant_id=world.tenants[slug], key=key, name=key, permissions=permissions))
        else:
            trole.permissions = permissions
        s.flush()


def _grant_rows(s: Session, world: World, who: str, role: str, where: str) -> list[Grant | GlobalGrant]:
    ptype, pid = world.principal_ref(who)
    tenant_id, resource_id = world.tenant_and_resource(where)
    if tenant_id is None:
        return list(
            s.scalars(
                select(GlobalGrant).where(
                    GlobalGrant.principal_id == pid,
                    GlobalGrant.principal_type == ptype,
                    GlobalGrant.role_key == role,
                )
            )
        )
    with scoping.cross_tenant(s):
        return list(
            s.scalars(
                select(Grant).where(
                    Grant.tenant_id == tenant_id,
                    Grant.principal_id == pid,
                    Grant.principal_type == ptype,
                    Grant.role_key == role,
                    Grant.resource_id.is_(None) if resource_id is None else Grant.resource_id == resource_id,
                )
            )
        )


def apply_step(db: Database, world: World, step: dict[str, Any]) -> None:
    """One step in one transaction, with the version bump every authorization write makes."""
    with db.unit_of_work() as s:
        for ref, permissions in step.get("roles", {}).items():
            _set_role(s, world, ref, permissions)
        for user, slug in step.get("members", []):
            with scoping.in_tenant(s, world.tenants[slug]):
                s.add(Membership(tenant_id=world.tenants[slug], user_id=world.users[user]))
                s.flush()
        for user, slug in step.get("remove_members", []):
            with scoping.in_tenant(s, world.tenants[slug]):
                for m in s.scalars(select(Membership).where(Membership.user_id == world.users[user])):
                    m.deleted_at = utcnow()
                s.flush()
        for name, users in step.get("groups", {}).items():
            if name not in world.groups:
                group = Group(name=name)
                s.add(group)
                s.flush()
                world.groups[name] = group.id
            for user in users:
                s.add(GroupMember(group_id=world.groups[name], user_id=world.users[user]))
        for user, name in step.get("leave", []):
            s.execute(
                delete(GroupMember).where(
                    GroupMember.group_id == world.groups[name], GroupMember.user_id == world.users[user]
                )
            )
        for name in step.get("delete_groups", []):
            group = s.get(Group, world.groups[name])
            assert group is not None
            group.deleted_at = utcnow()
        for who, role, where in step.get("grants", []):
            ptype, pid = world.principal_ref(who)
            tenant_id, resource_id = world.tenant_and_resource(where)
            if tenant_id is None:
                s.add(GlobalGrant(principal_type=ptype, principal_id=pid, role_key=role))
                continue
            with scoping.in_tenant(s, tenant_id):
                s.add(
                    Grant(
                        tenant_id=tenant_id,
                        principal_type=ptype,
                        principal_id=pid,
                        role_key=role,
                        resource_id=resource_id,
                    )
                )
                s.flush()
        for who, role, where in step.get("revoke", []):
            rows = _grant_rows(s, world, who, role, where)
            assert rows, f"nothing to revoke for {(who, role, where)}"
            for row in rows:
                if isinstance(row, GlobalGrant):
                    s.delete(row)
                else:
                    with scoping.in_tenant(s, row.tenant_id):
                        row.deleted_at = utcnow()
                        s.flush()
        s.flush()
        authz_cache.bump(s)


def ask(db: Database, world: World, check: Check, *, armed: bool) -> bool:
    who, perm, where, _ = check
    tenant_id, resource_id = world.tenant_and_resource(where)
    authz_cache.CACHE.clear()  # every answer computed afresh (caching has its own tests)
    with db.sessions() as s:
        if armed and tenant_id is not None:
            scoping.enter_tenant(s, tenant_id)
        return engine.check(s, world.principal(who), perm, tenant_id, resource_id)


def execute_plan(db: Database, plan: dict[str, Any]) -> None:
    world = build_world(db)
    for number, step in enumerate(plan["steps"], start=1):
        apply_step(db, world, step)
        failures = [
            (number, "armed" if armed else "unarmed", check)
            for check in step["expect"]
            for armed in (True, False)
            if ask(db, world, check, armed=armed) is not check[3]
        ]
        assert not failures, f"{plan['id']}: step, session, (who, perm, where, expected): {failures}"


@pytest.mark.parametrize("plan", PLANS, ids=[p["id"] for p in PLANS])
def test_inheritance_plan_holds(clean_db: Database, plan: dict[str, Any]) -> None:
    execute_plan(clean_db, plan)


def test_check_of_unknown_permission_is_an_error_not_a_deny(clean_db: Database) -> None:
    """A misspelled permission must never pass silently as a deny (STYLE point 7)."""
    world = build_world(clean_db)
    with clean_db.sessions() as s, pytest.raises(ValueError, match="unknown permission"):
        engine.check(s, world.principal("root"), "host.reed", world.tenants["acme"])
