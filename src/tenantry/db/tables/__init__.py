"""Mapped classes. Importing this package registers every table on `Base.metadata`."""

from tenantry.db.tables.audit import AuditEvent
from tenantry.db.tables.grants import GlobalGrant, Grant
from tenantry.db.tables.memberships import Membership
from tenantry.db.tables.resources import Resource
from tenantry.db.tables.sessions import AuthSession
from tenantry.db.tables.tenants import Tenant
from tenantry.db.tables.users import User

__all__ = ["AuditEvent", "AuthSession", "GlobalGrant", "Grant", "Membership", "Resource", "Tenant", "User"]
