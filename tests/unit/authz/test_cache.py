"""The effective-permission cache (DESIGN §3, STYLE point 9): fast, never stale, never poisoned.

Every role, grant, group and membership write bumps one version in its own transaction; the
next transaction anywhere reads the version and drops what was cached under an older one.
Facts read by a transaction that changed authorization data stay private to it, so a rollback
cannot leave permissions behind that no longer exist.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from tenantry.authz import Principal, engine, system_principal
from tenantry.authz import cache as authz_cache
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuthzState, Grant, Tenant
from tenantry.services import grants, groups, memberships, roles
from tenantry.services.context import ServiceContext
from tests.personas import Personas

Api = Callable[[str | None], TestClient]


# --- helpers -----------------------------------------------------------------------------------


def can(db: Database, personas: Personas, who: str, perm: str, tenant: str = "acme") -> bool:
    """One check in a fresh transaction, in a session armed for the tenant (as a request)."""
    user = personas.users[who]
    tenant_id = personas.tenants[tenant].id
    with db.sessions() as s:
        scoping.enter_tenant(s, tenant_id)
        who_ = Principal(kind="user", user_id=user.id, label=who, is_superadmin=user.is_superadmin)
        return engine.check(s, who_, perm, tenant_id)


@contextmanager
def system(db: Database, tenant: Tenant | None = None) -> Iterator[ServiceContext]:
    """A committed unit of work acting as the system, optionally inside a tenant."""
    with db.unit_of_work() as s:
        ctx = ServiceContext(session=s, principal=system_principal("tests"))
        if tenant is not None:
            found = s.get(Tenant, tenant.id)
            assert found is not None
            ctx.enter(found)
        yield ctx


def version(db: Database) -> int:
    with db.sessions() as s:
        return s.scalar(select(AuthzState.version).where(AuthzState.id == 1)) or 0


def grant_id(db: Database, personas: Personas, who: str, role: str) -> uuid.UUID:
    with db.sessions() as s:
        scoping.enter_tenant(s, personas.acme.id)
        found = s.scalar(
            select(Grant.id).where(Grant.principal_id == personas.users[who].id, Grant.role_key == role)
        )
        assert found is not None
        return found


# --- a change is seen by the next transaction ------------------------------------------------------


def test_grant_change_takes_effect_on_the_next_check(clean_db: Database, personas: Personas) -> None:
    assert can(clean_db, personas, "acme_viewer", "host.update") is False  # warm the cache
    assert can(clean_db, personas, "acme_viewer", "host.update") is False  # served from it
    v0 = version(clean_db)

    with system(clean_db, personas.acme) as ctx:
        grants.create_grant(
            ctx, principal_type="user", principal_id=personas.users["acme_viewer"].id, role="member"
        )
    assert version(clean_db) > v0
    assert can(clean_db, personas, "acme_viewer", "host.update") is True

    revoked = grant_id(clean_db, personas, "acme_viewer", "member")
    with system(clean_db, personas.acme) as ctx:
        grants.delete_grant(ctx, revoked)
    assert can(clean_db, personas, "acme_viewer", "host.update") is False


WRITES: list[tuple[str, str, str, bool, bool]] = [
    # (write through a service, who, permission, before, after)
    ("remove_member", "acme_member", "host.update", True, False),
    ("change_member_role", "acme_viewer", "host.update", False, True),
    ("grant_to_group", "acme_viewer", "audit.read", False, True),
    ("remove_from_group", "acme_member", "audit.read", True, False),
    ("delete_group", "acme_member", "audit.read", True, False),
    ("delete_role_grant_then_role", "acme_member", "trash.purge", True, False),
]


def _prepare(db: Database, personas: Personas, write: str) -> None:
    if write in ("remove_from_group", "delete_group"):
        with system(db) as ctx:
            group = groups.create_group(ctx, name="auditors")
            groups.add_group_member(ctx, group, user_id=personas.users["acme_member"].id)
        with system(db, personas.acme) as ctx:
            grants.create_grant(ctx, principal_type="group", principal_id=group.id, role="auditor")
    if write == "delete_role_grant_then_role":
        with system(db, personas.acme) as ctx:
            roles.create_role(
                ctx, key="purger", name="Purger", permissions=["trash.purge"], acknowledge_risk=True
            )
            grants.create_grant(
                ctx, principal_type="user", principal_id=personas.users["acme_member"].id, role="purger"
            )


def _write(db: Database, personas: Personas, write: str) -> None:
    acme = personas.acme
    if write == "remove_member":
        with system(db, acme) as ctx:
            memberships.remove_member(ctx, personas.users["acme_member"].id)
    elif write == "change_member_role":
        with system(db, acme) as ctx:
            memberships.change_member_role(ctx, personas.users["acme_viewer"].id, role="member")
    elif write == "grant_to_group":
        with system(db) as ctx:
            group = groups.create_group(ctx, name="readers")
            groups.add_group_member(ctx, group, user_id=personas.users["acme_viewer"].id)
        with system(db, acme) as ctx:
            grants.create_grant(ctx, principal_type="group", principal_id=group.id, role="auditor")
    elif write in ("remove_from_group", "delete_group"):
        with system(db) as ctx:
            group = groups.list_groups(ctx)[0]
            if write == "delete_group":
                groups.delete_group(ctx, group)
            else:
                groups.remove_group_member(ctx, group, user_id=personas.users["acme_member"].id)
    elif write == "delete_role_grant_then_role":
        revoked = grant_id(db, personas, "acme_member", "purger")
        with system(db, acme) as ctx:
            grants.delete_grant(ctx, revoked)
            roles.delete_role(ctx, "purger")


@pytest.mark.parametrize(("write", "who", "perm", "before", "after"), WRITES, ids=[w[0] for w in WRITES])
def test_every_authorization_write_is_seen_by_the_next_check(
    clean_db: Database, personas: Personas, write: str, who: str, perm: str, before: bool, after: bool
) -> None:
    _prepare(clean_db, personas, write)
    assert can(clean_db, personas, who, perm) is before  # cached now
    _write(clean_db, personas, write)
    assert can(clean_db, personas, who, perm) is after


def test_change_by_another_instance_is_seen_through_the_version(
    clean_db: Database, personas: Personas
) -> None:
    """Another instance's commit runs none of our after-commit hooks: only the version tells."""
    assert can(clean_db, personas, "acme_viewer", "host.update") is False
    with clean_db.sessions() as s:
        ctx = ServiceContext(session=s, principal=system_principal("other instance"))
        acme = s.get(Tenant, personas.acme.id)
        assert acme is not None
        ctx.enter(acme)
        grants.create_grant(
            ctx, principal_type="user", principal_id=personas.users["acme_viewer"].id, role="member"
        )
        s.commit()  # a plain commit: this process's cache is not told
    assert can(clean_db, personas, "acme_viewer", "host.update") is True


def test_warm_check_costs_only_the_version_read(clean_db: Database, personas: Personas) -> None:
    assert can(clean_db, personas, "acme_member", "host.read") is True
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if re.search(r"\bFROM\b", statement, re.IGNORECASE):
            seen.append(statement)

    event.listen(clean_db.engine, "before_cursor_execute", record)
    try:
        assert can(clean_db, personas, "acme_member", "host.read") is True
    finally:
        event.remove(clean_db.engine, "before_cursor_execute", record)
    assert len(seen) == 1 and "authz_state" in seen[0]


# --- rollback: nothing of the undone change survives --------------------------------------------


def test_rolled_back_grant_leaves_nothing_in_the_shared_cache(clean_db: Database, personas: Personas) -> None:
    """Security regression: facts read inside a transaction that then rolled back must not be
    served to anyone afterwards."""
    viewer = personas.users["acme_viewer"]
    acme_id = personas.acme.id
    assert can(clean_db, personas, "acme_viewer", "host.update") is False
    with clean_db.sessions() as s:
        ctx = ServiceContext(session=s, principal=system_principal("tests"))
        acme = s.get(Tenant, acme_id)
        assert acme is not None
        ctx.enter(acme)
        grants.create_grant(ctx, principal_type="user", principal_id=viewer.id, role="tenant_admin")
        inside = Principal(kind="user", user_id=viewer.id, label="acme_viewer")
        # The transaction sees its own grant, at tenant and resource scope alike ...
        assert engine.check(s, inside, "host.update", acme_id) is True
        assert engine.check(s, inside, "member.manage", acme_id) is True
        s.rollback()
        # ... and, once it is undone, neither does the same session's next transaction.
        assert engine.check(s, inside, "host.update", acme_id) is False
    assert can(clean_db, personas, "acme_viewer", "host.update") is False
    assert can(clean_db, personas, "acme_viewer", "member.manage") is False


# --- custom roles -----------------------------------------------------------------------------------


def test_editing_a_custom_role_takes_effect_on_the_next_request(api: Api, personas: Personas) -> None:
    admin = api("acme_admin")
    r = admin.post(
        "/api/v1/tenants/acme/roles",
        json={"key": "grant_reader", "name": "Grant reader", "permissions": ["grant.read"]},
    )
    assert r.status_code == 201, r.text
    r = admin.post(
        "/api/v1/tenants/acme/grants",
        json={
            "principal": {"type": "user", "id": str(personas.users["acme_member"].id)},
            "role": "grant_reader",
        },
    )
    assert r.status_code == 201, r.text
    assert api("acme_member").get("/api/v1/tenants/acme/grants").status_code == 200

    r = api("acme_admin").patch(
        "/api/v1/tenants/acme/roles/grant_reader", json={"permissions": ["tenant.read"]}
    )
    assert r.status_code == 200, r.text
    assert api("acme_member").get("/api/v1/tenants/acme/grants").status_code == 403

    r = api("acme_admin").patch(
        "/api/v1/tenants/acme/roles/grant_reader", json={"permissions": ["grant.read"]}
    )
    assert r.status_code == 200, r.text
    assert api("acme_member").get("/api/v1/tenants/acme/grants").status_code == 200


def test_editing_a_global_custom_role_takes_effect_in_every_tenant(
    clean_db: Database, personas: Personas
) -> None:
    with system(clean_db) as ctx:
        roles.create_role(ctx, key="reporter", name="Reporter", permissions=["audit.read"])
    for tenant in (personas.acme, personas.globex):
        with system(clean_db, tenant) as ctx:
            member = "acme_member" if tenant is personas.acme else "globex_member"
            grants.create_grant(
                ctx, principal_type="user", principal_id=personas.users[member].id, role="reporter"
            )
    assert can(clean_db, personas, "acme_member", "audit.read") is True
    assert can(clean_db, personas, "globex_member", "audit.read", tenant="globex") is True
    with system(clean_db) as ctx:
        roles.update_role(ctx, "reporter", {"permissions": ["settings.read"]})
    assert can(clean_db, personas, "acme_member", "audit.read") is False
    assert can(clean_db, personas, "globex_member", "audit.read", tenant="globex") is False


def test_cache_entries_of_an_older_version_are_never_served() -> None:
    """A transaction that raced a change stores under the version it read: void afterwards."""
    cache = authz_cache.PermissionCache()
    cache.clear(version=7)
    cache.put("k", frozenset({"host.read"}), version=6)
    assert cache.get("k") is None
    cache.put("k", frozenset({"host.read"}), version=7)
    assert cache.get("k") == frozenset({"host.read"})
