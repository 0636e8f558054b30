"""Every public service function authorizes itself; no route, command or job has to do it for it.

Each function of `tenantry.services` whose first parameter is `ctx: ServiceContext` is called by a
signed-in user with no grants and no memberships (`outsider`), in a context that has entered acme
anyway — as a route that forgot its own check would — with arguments naming real objects, so that
a function trusting its caller would succeed. It must refuse, and write nothing.

Functions are found by enumeration: a new one fails `test_every_service_function_has_a_case`
until it gets a case here (or, with a reason, a place in the short allowlist).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import tenantry.services
from tenantry.authz import Perm, Principal, system_principal
from tenantry.db import scoping
from tenantry.db.base import Base
from tenantry.db.session import Database
from tenantry.db.tables import (
    AuditChainHead,
    AuditEvent,
    AuthSession,
    Group,
    MembershipInvitation,
    SharedResource,
    Tenant,
    User,
)
from tenantry.errors import NotFound, PermissionDenied, Unauthenticated
from tenantry.services import (
    alias_roles,
    aliases,
    api_keys,
    email_templates,
    grants,
    groups,
    memberships,
    resource_types,
    resources,
    roles,
    shared_resources,
    ssh_keys,
    tenants,
    users,
)
from tenantry.services.audit import AuditFilter
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page
from tenantry.services.resources import ResourceFilter
from tests.backends import Backend
from tests.conftest import _owner_truncate
from tests.personas import PASSWORD, build_personas

# --- what is not expected to refuse ---------------------------------------------------------------

PUBLIC = {
    "auth.login": "sign-in: the password is the credential",
    "auth.authenticate": "turns a presented token into its principal: holding the token is the credential",
    "impersonation.authenticate_token": "auth.authenticate's step for impersonation tokens (the credential)",
    "invitations.accept_invitation": "the single-use link is the credential",
    "invitations.forgot_password": "anyone may ask; the same answer whether or not the address exists",
    "invitations.reset_password": "the single-use link is the credential",
}
# Steps that services take after their own check. Only services may call them
# (`test_building_blocks_are_called_by_services_only`); each names who checks first.
BUILDING_BLOCKS = {
    "api_keys.revoke_all_of_user": "deactivating a user (update_user), after user.manage",
    "audit.record": "the one audit writer, called by every change after that change's check",
    "audit.record_apart": "the same writer in its own transaction, for reads under an impersonation token",
    "audit.note_hidden": "a log line (no row) after a lookup has already decided to answer 404",
    "auth.open_session": "after the password (login) or the invitation link (accept_invitation)",
    "auth.clear_throttle": "after a successful login or password reset",
    "credentials.hash_new_password": "a password being set, after user.manage or the single-use link",
    "invitations.send_invitation": "after user.manage (users) or member.manage (memberships)",
    "membership_invitations.creator_joins": "creating a tenant, after tenant.create",
    "membership_invitations.join": "after member.manage (add_member), tenant.create, or the invitee's accept",
    "membership_invitations.join_on_signup": "after the single-use link (accept_invitation)",
    "membership_invitations.role_available": "a role check inside member changes and accept, after theirs",
    "memberships.guard_last_admin": "a guard inside member and grant changes, after member/grant.manage",
    "sessions.revoke_user_sessions": "after user.manage, a reset link, the current password or a 2FA code",
    "sessions.keep_signed_in_user": "authentication itself, after the token was found valid",
    "settings.apply_new_tenant_defaults": "creating a tenant (create_tenant), after tenant.create",
    "throttle.clear_account": "after the right secret (login, password reset, guard_secret)",
    "throttle.is_locked": "login's re-check after the password was right, before the session",
    "throttle.guard_secret": "around a secret re-entered by the signed-in user (password change, 2FA)",
    "throttle.notify_locked": "a lock-out found by login or guard_secret while counting a failure",
    "throttle.reserve_account_attempt": "counts an attempt before login or guard_secret checks the secret",
    "totp.requires_2fa": "a sign-in step (open_session; the caller is not signed in yet) and 2FA disable",
    "totp.verify_second_factor": "a sign-in step (login) and 2FA disable: the code is the credential",
    "trash.move_to_trash": "after tenant.delete, user.manage or <type>.delete in the deleting service",
    "users.find_by_email": "adding a member by email, after member.manage",
    "users.new_user": "after user.manage (create_user) or member.manage (add_member by email)",
}
ALLOWLIST = PUBLIC | BUILDING_BLOCKS

SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c world"
SSH_PUBLIC_KEY_2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU probe"

# --- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    who: str = "outsider"  # or "anonymous": self-service is allowed to anyone signed in
    expect: str = "refused"  # PermissionDenied/Unauthenticated; "hidden": NotFound; "empty": nothing
    args: tuple[tuple[str, str], ...] = ()  # extra arguments, by name of an ARGS entry


REFUSED = Case()
# Self-service (one's own profile, keys, sessions, 2FA) and the resource-type catalog: allowed to
# anyone signed in, so the caller without rights here is the anonymous one.
SELF = Case("anonymous")
# 404 is the refusal where any other answer would tell that the object exists (DESIGN §2): a tenant
# one cannot see (tenants.find_visible / get_tenant / view, an API key restricted to it, a default
# tenant in update_me), a resource one may not read (resources.get / update / delete /
# deletion_impact), another user's API key, session or invitation (revoke_key, revoke_session,
# accept, decline). Only there.
HIDDEN = Case(expect="hidden")
# Lists filtered by the engine in SQL: a caller without rights gets nothing (acme has data).
EMPTY = Case(expect="empty")

CASES: dict[str, list[Case]] = {
    "alias_roles.create_alias_role": [REFUSED],
    "aliases.add_alias_ssh_key": [REFUSED],
    "aliases.create_alias": [REFUSED],
    "aliases.delete_alias": [REFUSED],
    "aliases.delete_alias_ssh_key": [REFUSED],
    "aliases.get_alias": [REFUSED],
    "aliases.list_alias_ssh_keys": [REFUSED],
    "aliases.list_aliases": [REFUSED],
    "aliases.list_user_aliases": [REFUSED],
    "aliases.update_alias": [REFUSED],
    "alias_roles.delete_alias_role": [REFUSED],
    "alias_roles.get_alias_role": [REFUSED],
    "alias_roles.list_alias_roles": [REFUSED],
    "alias_roles.update_alias_role": [REFUSED],
    "api_keys.create_key": [SELF, Case(expect="hidden", args=(("tenant_id", "acme_id"),))],
    "api_keys.list_user_keys": [REFUSED],
    "api_keys.revoke_user_key": [REFUSED],
    "api_keys.list_keys": [SELF, EMPTY],
    "api_keys.revoke_key": [SELF, HIDDEN],
    "audit.export_events": [REFUSED],
    "audit.list_events": [REFUSED],
    "audit.verify_chains": [REFUSED],
    "auth.list_sessions": [SELF],
    "auth.logout": [SELF],
    "auth.revoke_all_sessions": [SELF],
    "auth.revoke_session": [SELF, HIDDEN],
    "authz.explain": [REFUSED],
    "grants.create_grant": [REFUSED],
    "grants.delete_grant": [REFUSED],
    "grants.list_grants": [REFUSED],
    "groups.add_group_member": [REFUSED],
    "groups.create_group": [REFUSED],
    "groups.delete_group": [REFUSED],
    "groups.get_group": [REFUSED],
    "groups.list_group_members": [REFUSED],
    "groups.list_groups": [REFUSED],
    "groups.remove_group_member": [REFUSED],
    "groups.update_group": [REFUSED],
    "impersonation.end": [REFUSED],
    "impersonation.impersonated_by": [SELF],
    "impersonation.start": [REFUSED],
    "invitations.change_password": [SELF],
    "membership_invitations.accept": [SELF, HIDDEN],
    "membership_invitations.decline": [SELF, HIDDEN],
    "membership_invitations.list_mine": [SELF, EMPTY],
    "memberships.add_member": [REFUSED],
    "memberships.change_member_role": [REFUSED],
    "memberships.get_member": [REFUSED],
    "memberships.list_invitations": [REFUSED],
    "memberships.list_members": [REFUSED],
    "memberships.my_tenants": [SELF, EMPTY],
    "memberships.remove_member": [REFUSED],
    "memberships.resend_invitation": [REFUSED],
    "memberships.revoke_invitation": [REFUSED],
    "memberships.set_default_tenant": [REFUSED],
    "resource_types.create_type": [REFUSED],
    "resource_types.delete_type": [REFUSED],
    "resource_types.ensure_builtin_types": [REFUSED],
    "resource_types.get_type_visible": [SELF],
    "resource_types.list_types": [SELF],
    "resource_types.update_type": [REFUSED],
    "resources.create_resource": [REFUSED],
    "resources.delete_resource": [HIDDEN],
    "resources.deletion_impact": [HIDDEN],
    "resources.get_resource": [HIDDEN],
    "resources.list_resources": [EMPTY],
    "resources.update_resource": [HIDDEN],
    "email_templates.create_template": [REFUSED],
    "email_templates.delete_template": [REFUSED],
    "email_templates.get_system_template": [REFUSED],
    "email_templates.get_template": [REFUSED],
    "email_templates.list_system_templates": [REFUSED],
    "email_templates.list_templates": [REFUSED],
    "email_templates.preview_system_template": [REFUSED],
    "email_templates.preview_template": [REFUSED],
    "email_templates.update_template": [REFUSED],
    "roles.create_role": [REFUSED],
    "roles.delete_role": [REFUSED],
    "roles.get_role": [REFUSED],
    "roles.list_roles": [REFUSED],
    "roles.update_role": [REFUSED],
    "settings.get_system_category": [REFUSED],
    "settings.get_system_settings": [REFUSED],
    "settings.get_tenant_category": [REFUSED],
    "settings.get_tenant_settings": [REFUSED],
    "settings.reset_tenant_setting": [REFUSED],
    "settings.update_system_settings": [REFUSED],
    "settings.update_tenant_settings": [REFUSED],
    "shared_resources.assign": [REFUSED],
    "shared_resources.assignments": [REFUSED],
    "shared_resources.create_shared": [REFUSED],
    "shared_resources.delete_shared": [REFUSED],
    "shared_resources.get_shared": [REFUSED],
    "shared_resources.list_shared": [REFUSED],
    "shared_resources.unassign": [REFUSED],
    "shared_resources.update_shared": [REFUSED],
    "ssh_keys.add_ssh_key": [SELF],
    "ssh_keys.delete_ssh_key": [SELF, HIDDEN],
    "ssh_keys.get_ssh_key": [SELF, HIDDEN],
    "ssh_keys.list_ssh_keys": [SELF, EMPTY],
    "tenants.create_tenant": [REFUSED],
    "tenants.delete_tenant": [REFUSED],
    "tenants.deletion_impact": [REFUSED],
    "tenants.enter_tenant": [REFUSED],
    "tenants.find_deleted": [REFUSED],
    "tenants.find_visible": [HIDDEN],
    "tenants.get_tenant": [HIDDEN],
    "tenants.list_tenants": [EMPTY],
    "tenants.restore_tenant": [REFUSED],
    "tenants.update_tenant": [REFUSED],
    "tenants.view": [HIDDEN],
    "totp.disable": [SELF],
    "totp.enable": [SELF],
    "totp.regenerate_recovery_codes": [SELF],
    "totp.start_setup": [SELF],
    "trash.due_for_purge": [REFUSED],
    "trash.get_batch": [REFUSED],
    "trash.list_batches": [REFUSED],
    "trash.purge_batch": [REFUSED],
    "trash.restore_batch": [REFUSED],
    "users.create_user": [REFUSED],
    "users.delete_user": [REFUSED],
    "users.deletion_impact": [REFUSED],
    "users.get_user": [REFUSED],
    "users.list_users": [REFUSED],
    "users.me": [SELF],
    "users.resend_invitation": [REFUSED],
    "users.restore_user": [REFUSED],
    "users.update_me": [SELF, Case(expect="hidden", args=(("changes", "default_acme"),))],
    "users.update_user": [REFUSED],
    "users.user_tenants": [REFUSED],
}


def service_functions() -> dict[str, Callable[..., Any]]:
    """Every public function defined in a `tenantry.services` module taking `ctx: ServiceContext` first."""
    found: dict[str, Callable[..., Any]] = {}
    for info in pkgutil.iter_modules(tenantry.services.__path__):
        module = importlib.import_module(f"tenantry.services.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != module.__name__:
                continue
            first = next(iter(inspect.signature(fn).parameters.values()), None)
            if (
                first is not None
                and first.name == "ctx"
                and first.annotation in ("ServiceContext", ServiceContext)
            ):
                found[f"{info.name}.{name}"] = fn
    return found


def test_every_service_function_has_a_case() -> None:
    names = set(service_functions())
    assert not CASES.keys() & ALLOWLIST.keys()
    assert names - CASES.keys() - ALLOWLIST.keys() == set(), (
        "add a case (or an allowlist entry with a reason)"
    )
    assert (CASES.keys() | ALLOWLIST.keys()) - names == set(), "stale entries: the function is gone"


def _imports_of_services(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """Local names bound to service modules, and to service functions imported directly."""
    modules: dict[str, str] = {}
    functions: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tenantry.services":
            modules |= {a.asname or a.name: a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tenantry.services."):
            mod = (node.module or "").rsplit(".", 1)[1]
            functions |= {a.asname or a.name: f"{mod}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            modules |= {
                a.asname: a.name.rsplit(".", 1)[1]
                for a in node.names
                if a.asname and a.name.startswith("tenantry.services.")
            }
    return modules, functions


def _defined_as(name: str | None) -> str | None:
    """`module.function` where the function is defined: `auth.revoke_user_sessions` is a re-export."""
    if name is None or name.startswith("None."):
        return name
    module, attr = name.split(".", 1)
    try:
        fn = getattr(importlib.import_module(f"tenantry.services.{module}"), attr, None)
    except ImportError:
        return name
    if not inspect.isfunction(fn) or not fn.__module__.startswith("tenantry.services."):
        return name
    return f"{fn.__module__.rsplit('.', 1)[1]}.{fn.__name__}"


def test_building_blocks_are_called_by_services_only() -> None:
    """A building block trusts its caller: no route, command or job may be that caller."""
    src = Path(tenantry.services.__file__).parents[1]
    offenders = []
    for path in sorted(src.rglob("*.py")):
        if path.is_relative_to(src / "services"):
            continue
        tree = ast.parse(path.read_text())
        modules, functions = _imports_of_services(tree)
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                name = f"{modules.get(node.value.id)}.{node.attr}"
            elif isinstance(node, ast.Name):
                name = functions.get(node.id)
            if _defined_as(name) in BUILDING_BLOCKS:
                offenders.append(f"{path.relative_to(src)}:{node.lineno} calls {name}")
    assert not offenders, "\n".join(offenders)


# --- the world: real objects a trusting function would happily act on ----------------------------


@dataclass
class World:
    acme_id: uuid.UUID
    outsider_id: uuid.UUID
    member_id: uuid.UUID
    invited_id: uuid.UUID
    invitation_id: uuid.UUID
    gone_user_id: uuid.UUID
    gone_tenant_id: uuid.UUID
    group_id: uuid.UUID
    resource_id: uuid.UUID
    batch_id: uuid.UUID
    grant_id: uuid.UUID
    key_id: uuid.UUID
    session_id: uuid.UUID
    shared_id: uuid.UUID
    ssh_key_id: uuid.UUID
    alias_role_id: uuid.UUID
    alias_id: uuid.UUID
    template_id: uuid.UUID


def _system(session: Session, tenant: Tenant | None = None) -> ServiceContext:
    ctx = ServiceContext(session=session, principal=system_principal("tests"))
    if tenant is not None:
        ctx.enter(tenant)
    return ctx


def build_world(db: Database) -> World:
    p = build_personas(db)
    acme_id, member_id = p.acme.id, p.users["acme_member"].id
    ids: dict[str, uuid.UUID] = {"acme_id": acme_id, "member_id": member_id}
    ids["outsider_id"] = p.users["outsider"].id
    with db.unit_of_work() as session:
        ctx = _system(session)
        resource_types.ensure_builtin_types(ctx)
        resource_types.create_type(ctx, key="gadget", name="Gadget")
        group = groups.create_group(ctx, name="operators")
        groups.add_group_member(ctx, group, user_id=member_id)
        shared = shared_resources.create_shared(
            ctx, name="gw-1", type="gateway", status="active", capacity=3, attributes={}
        )
        shared_resources.assign(ctx, shared, tenant_id=acme_id)
        ids |= {"group_id": group.id, "shared_id": shared.id}
        gone_tenant = tenants.create_tenant(ctx, slug="initech", name="Initech")
        ids["gone_tenant_id"] = gone_tenant.id
        tenants.delete_tenant(ctx, gone_tenant)
        gone_user = users.create_user(ctx, email="gone@example.com", password=PASSWORD)
        ids["gone_user_id"] = gone_user.id
        users.delete_user(ctx, gone_user)
    with db.unit_of_work() as session:
        ctx = _system(session, session.get(Tenant, acme_id))
        host = resources.create_resource(
            ctx, type="host", name="web-1", attributes={"ip_address": "10.0.0.1"}
        )
        spare = resources.create_resource(
            ctx, type="host", name="web-2", attributes={"ip_address": "10.0.0.2"}
        )
        ids |= {"resource_id": host.id, "batch_id": resources.delete_resource(ctx, spare.id)}
        roles.create_role(ctx, key="acme_ops", name="Ops", permissions=[Perm.TENANT_READ])
        ids["template_id"] = email_templates.create_template(ctx, key="invitation", language="en").id
        viewer_id = p.users["acme_viewer"].id
        grant = grants.create_grant(
            ctx, principal_type="user", principal_id=viewer_id, role="member", resource_id=ids["resource_id"]
        )
        invited = memberships.add_member(ctx, ctx.tenant, role="viewer", email="invited@example.com")
        ids |= {"grant_id": grant.id, "invited_id": invited.user.id}
    with db.unit_of_work() as session:
        # A tenant admin (not an account administrator) invites: an open invitation to someone else.
        admin_id = p.users["acme_admin"].id
        as_admin = Principal(kind="user", user_id=admin_id, label="acme.admin@example.com")
        invitation = memberships.add_member(
            ServiceContext(session=session, principal=as_admin),
            session.get(Tenant, acme_id),
            role="viewer",
            user_id=p.users["globex_member"].id,
        )
        assert isinstance(invitation, MembershipInvitation)
        ids["invitation_id"] = invitation.id
    with db.unit_of_work() as session:
        session_id = session.scalar(select(AuthSession.id).where(AuthSession.user_id == member_id))
        assert session_id is not None
        as_member = Principal(
            kind="user", user_id=member_id, label="acme.member@example.com", session_id=session_id
        )
        as_member_ctx = ServiceContext(session=session, principal=as_member)
        key = api_keys.create_key(as_member_ctx, name="ci", scope="read")
        ssh_key = ssh_keys.add_ssh_key(as_member_ctx, name="laptop", public_key=SSH_PUBLIC_KEY)
        alias_role = alias_roles.create_alias_role(as_member_ctx, name="support", permissions=["host.read"])
        alias = aliases.create_alias(
            as_member_ctx, email="alias@example.com", password=PASSWORD, role_id=alias_role.role.id
        )
        ids |= {
            "session_id": session_id,
            "key_id": key.key.id,
            "ssh_key_id": ssh_key.id,
            "alias_role_id": alias_role.role.id,
            "alias_id": alias.alias.id,
        }
    return World(**ids)


@pytest.fixture(scope="module")
def world(backend: Backend, db: Database) -> Iterator[World]:
    _owner_truncate(backend)  # start from nothing, whatever ran before
    yield build_world(db)
    _owner_truncate(backend)


def _deleted(s: Session, model: type[Any], id_: uuid.UUID) -> Any:
    with scoping.include_deleted(s):
        return s.get(model, id_)


# Arguments by parameter name; "module.name" and "module.function.name" entries win.
Arg = Callable[[World, Session], Any]
ARGS: dict[str, Arg] = {
    "tenant": lambda w, s: s.get(Tenant, w.acme_id),
    "ref": lambda w, s: "acme",
    "user": lambda w, s: s.get(User, w.member_id),
    "user_id": lambda w, s: w.member_id,
    "group": lambda w, s: s.get(Group, w.group_id),
    "group_id": lambda w, s: w.group_id,
    "resource_id": lambda w, s: w.resource_id,
    "batch_id": lambda w, s: w.batch_id,
    "grant_id": lambda w, s: w.grant_id,
    "key_id": lambda w, s: w.key_id,
    "ssh_keys.key_id": lambda w, s: w.ssh_key_id,
    "ssh_keys.public_key": lambda w, s: SSH_PUBLIC_KEY_2,
    "role_id": lambda w, s: w.alias_role_id,
    "alias_id": lambda w, s: w.alias_id,
    "aliases.key_id": lambda w, s: w.ssh_key_id,
    "aliases.public_key": lambda w, s: SSH_PUBLIC_KEY_2,
    "aliases.changes": lambda w, s: {"active": False},
    "session_id": lambda w, s: w.session_id,
    "invitation_id": lambda w, s: w.invitation_id,
    "s": lambda w, s: s.get(SharedResource, w.shared_id),
    "shared_id": lambda w, s: w.shared_id,
    "ids": lambda w, s: [w.shared_id],
    "tenant_id": lambda w, s: w.acme_id,
    "acme_id": lambda w, s: w.acme_id,
    "principal_type": lambda w, s: "user",
    "principal_id": lambda w, s: w.member_id,
    "role": lambda w, s: "viewer",
    "permission": lambda w, s: Perm.TENANT_READ,
    "permissions": lambda w, s: [Perm.TENANT_READ],
    "perm": lambda w, s: Perm.TRASH_RESTORE,
    "changes": lambda w, s: {"name": "Taken over"},
    "default_acme": lambda w, s: {"default_tenant_id": w.acme_id},
    "name": lambda w, s: "probe",
    "description": lambda w, s: "probe",
    "slug": lambda w, s: "newco",
    "email": lambda w, s: "new@example.com",
    "password": lambda w, s: PASSWORD,
    "current_password": lambda w, s: PASSWORD,
    "new_password": lambda w, s: "another-long-passphrase-for-tests",
    "code": lambda w, s: "123456",
    "scope": lambda w, s: "read_write",
    "status": lambda w, s: "active",
    "capacity": lambda w, s: 5,
    "confirm": lambda w, s: True,
    "limit": lambda w, s: 50,
    "cursor": lambda w, s: None,
    "audit.flt": lambda w, s: AuditFilter(),
    "impersonation.reason": lambda w, s: "probe",
    "impersonation.minutes": lambda w, s: 10,
    "resources.flt": lambda w, s: ResourceFilter(),
    "resources.type": lambda w, s: "host",
    "resources.attributes": lambda w, s: {"ip_address": "10.0.0.9"},
    "settings.category": lambda w, s: "security",
    "settings.changes": lambda w, s: {"require_2fa": True},
    "settings.key": lambda w, s: "require_2fa",
    "shared_resources.type": lambda w, s: "gateway",
    "shared_resources.attributes": lambda w, s: {},
    "roles.key": lambda w, s: "acme_ops",
    "email_templates.template_id": lambda w, s: w.template_id,
    "email_templates.key": lambda w, s: "lockout",
    "language": lambda w, s: "de",
    "subject": lambda w, s: "taken over",
    "text": lambda w, s: "taken over",
    "html": lambda w, s: "taken over",
    "roles.create_role.key": lambda w, s: "new_role",
    "resource_types.key": lambda w, s: "gadget",
    "resource_types.create_type.key": lambda w, s: "new_type",
    "memberships.add_member.user_id": lambda w, s: w.outsider_id,  # the outsider lets himself in
    "memberships.resend_invitation.user_id": lambda w, s: w.invited_id,
    "users.resend_invitation.user": lambda w, s: s.get(User, w.invited_id),
    "users.restore_user.user": lambda w, s: _deleted(s, User, w.gone_user_id),
    "users.update_user.changes": lambda w, s: {"active": False},
    "tenants.find_deleted.ref": lambda w, s: "initech",
    "tenants.restore_tenant.tenant": lambda w, s: _deleted(s, Tenant, w.gone_tenant_id),
}


def arguments(name: str, fn: Callable[..., Any], case: Case, w: World, s: Session) -> dict[str, Any]:
    module = name.split(".")[0]
    wanted = {
        p.name: p.name for p in list(inspect.signature(fn).parameters.values())[1:] if p.default is p.empty
    }
    wanted |= dict(case.args)
    out = {}
    for param, entry in wanted.items():
        arg = ARGS.get(f"{name}.{entry}") or ARGS.get(f"{module}.{entry}") or ARGS.get(entry)
        assert arg is not None, f"no argument for {param!r} of {name}: add one to ARGS"
        out[param] = arg(w, s)
    return out


def snapshot(session: Session) -> dict[str, list[str]]:
    """Every row of every table, as the session sees it (pending changes are flushed first)."""
    out = {}
    with scoping.cross_tenant(session):
        for table in Base.metadata.sorted_tables:
            stmt = select(table)
            if table.name == AuditChainHead.__tablename__:
                continue  # moves with every event, the refusal's own trace included
            if table.name == AuditEvent.__tablename__:
                # A refusal may leave its own trace (issue 8 point 5): that is not the call's write.
                stmt = stmt.where(table.c.action != "authz.denied")
            out[table.name] = sorted(repr(tuple(row)) for row in session.execute(stmt))
    return out


PARAMS = [
    pytest.param(
        name, case, id=f"{name}-{case.who}-{case.expect}{'-' if case.args else ''}{len(case.args) or ''}"
    )
    for name, cases in sorted(CASES.items())
    for case in cases
]


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_service_function_refuses_a_caller_without_rights(
    world: World, db: Database, name: str, case: Case
) -> None:
    fn = service_functions()[name]
    session = db.sessions()
    try:
        principal = (
            Principal.nobody()
            if case.who == "anonymous"
            else Principal(kind="user", user_id=world.outsider_id, label="outsider@example.com")
        )
        ctx = ServiceContext(session=session, principal=principal)
        ctx.enter(session.get(Tenant, world.acme_id))  # a route that forgot its own check
        kwargs = arguments(name, fn, case, world, session)
        before = snapshot(session)
        try:
            result: Any = fn(ctx, **kwargs)
            outcome = f"returned {result!r}"
        except Exception as exc:
            result, outcome = exc, f"raised {type(exc).__name__}: {exc}"
        changed = [t for t, rows in snapshot(session).items() if rows != before[t]]
    finally:
        session.rollback()
        session.close()
    assert not changed, f"{name} as {case.who} wrote to {changed} ({outcome})"
    if case.expect == "refused":
        assert isinstance(result, PermissionDenied | Unauthenticated), f"{name} did not refuse: {outcome}"
    elif case.expect == "hidden":
        assert isinstance(result, NotFound), f"{name} should answer 404: {outcome}"
    else:
        items = result.items if isinstance(result, Page) else result
        assert items == [], f"{name} showed the caller without rights {outcome}"
