"""Mapped classes. Importing this package registers every table on `Base.metadata`."""

from tenantry.db.tables.alias_resources import AliasResource
from tenantry.db.tables.alias_roles import AliasRole
from tenantry.db.tables.api_keys import ApiKey
from tenantry.db.tables.audit import AuditChainHead, AuditEvent
from tenantry.db.tables.email_templates import EmailTemplate
from tenantry.db.tables.grants import GlobalGrant, Grant
from tenantry.db.tables.groups import AuthzState, Group, GroupMember
from tenantry.db.tables.impersonations import Impersonation
from tenantry.db.tables.login_throttle import LoginThrottle
from tenantry.db.tables.membership_invitations import MembershipInvitation
from tenantry.db.tables.memberships import Membership
from tenantry.db.tables.outbox import OutboxMessage
from tenantry.db.tables.resource_types import ResourceType
from tenantry.db.tables.resource_unique_values import ResourceUniqueValue
from tenantry.db.tables.resources import Resource
from tenantry.db.tables.roles import Role, TenantRole
from tenantry.db.tables.sessions import AuthSession
from tenantry.db.tables.settings import SystemSetting, TenantSetting
from tenantry.db.tables.shared_resources import SharedResource, SharedResourceAssignment
from tenantry.db.tables.ssh_keys import SshKey
from tenantry.db.tables.tenants import Tenant
from tenantry.db.tables.trash import DeletionBatch
from tenantry.db.tables.user_tokens import UserToken
from tenantry.db.tables.users import User

__all__ = [
    "AliasResource",
    "AliasRole",
    "ApiKey",
    "AuditChainHead",
    "AuditEvent",
    "AuthSession",
    "AuthzState",
    "DeletionBatch",
    "EmailTemplate",
    "GlobalGrant",
    "Grant",
    "Group",
    "GroupMember",
    "Impersonation",
    "LoginThrottle",
    "Membership",
    "MembershipInvitation",
    "OutboxMessage",
    "Resource",
    "ResourceType",
    "ResourceUniqueValue",
    "Role",
    "SharedResource",
    "SharedResourceAssignment",
    "SshKey",
    "SystemSetting",
    "Tenant",
    "TenantRole",
    "TenantSetting",
    "User",
    "UserToken",
]

import tenantry.db.audit_chain  # noqa: F401  (chains new audit events on every flush)
