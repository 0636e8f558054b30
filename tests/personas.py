"""Personas (role + tenant, never person names), built through the services so audit is real."""

from __future__ import annotations

from dataclasses import dataclass, field

from tenantry.authz import system_principal
from tenantry.db.session import Database
from tenantry.db.tables import Tenant, User
from tenantry.services import auth, memberships, tenants, users
from tenantry.services.context import ServiceContext

PASSWORD = "a-long-enough-passphrase-for-tests"

TENANT_ROLES = {
    "acme_admin": ("acme", "tenant_admin"),
    "acme_member": ("acme", "member"),
    "acme_viewer": ("acme", "viewer"),
    "acme_auditor": ("acme", "auditor"),
    "globex_admin": ("globex", "tenant_admin"),
    "globex_member": ("globex", "member"),
}


@dataclass
class Personas:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def acme(self) -> Tenant:
        return self.tenants["acme"]

    @property
    def globex(self) -> Tenant:
        return self.tenants["globex"]


def login_token(db: Database, email: str, password: str = PASSWORD) -> str:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        return auth.login(ctx, email=email, password=password).token


def build_personas(db: Database) -> Personas:
    p = Personas()
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        for slug, name in (("acme", "Acme Corp"), ("globex", "Globex Inc")):
            p.tenants[slug] = tenants.create_tenant(ctx, slug=slug, name=name)
        p.users["superadmin"] = users.create_user(
            ctx, email="superadmin@example.com", password=PASSWORD, is_superadmin=True
        )
        p.users["outsider"] = users.create_user(ctx, email="outsider@example.com", password=PASSWORD)
        for persona, (slug, role) in TENANT_ROLES.items():
            user = users.create_user(ctx, email=f"{persona.replace('_', '.')}@example.com", password=PASSWORD)
            memberships.add_member(ctx, p.tenants[slug], user=user, role=role)
            p.users[persona] = user
    for persona, user in p.users.items():
        p.tokens[persona] = login_token(db, user.email)
    return p
