from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from tenantry.api.schemas import MultiLine, SingleLine, Strict
from tenantry.services.grants import GrantView
from tenantry.services.roles import RoleView


class PermissionOut(BaseModel):
    key: str
    description: str
    risk: Literal["normal", "sensitive", "dangerous"]
    scopes: list[str]
    read_only: bool


class RoleCreate(Strict):
    key: SingleLine = Field(min_length=2, max_length=64, examples=["deployer"])
    name: SingleLine = Field(min_length=1, max_length=100)
    description: MultiLine = Field(default="", max_length=2000)
    permissions: list[SingleLine] = Field(max_length=500)
    acknowledge_risk: StrictBool = False


class RoleUpdate(Strict):
    name: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    description: MultiLine | None = Field(default=None, max_length=2000)
    permissions: list[SingleLine] | None = Field(default=None, max_length=500)
    acknowledge_risk: StrictBool = False

    def changes(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.model_fields_set if k != "acknowledge_risk"}


class RoleOut(BaseModel):
    key: str
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    scope: str
    tenant_id: uuid.UUID | None
    warnings: list[str] = []

    @classmethod
    def of(cls, v: RoleView) -> RoleOut:
        return cls(
            key=v.key,
            name=v.name,
            description=v.description,
            permissions=v.permissions,
            builtin=v.builtin,
            scope=v.scope,
            tenant_id=v.tenant_id,
            warnings=v.warnings,
        )


class PrincipalRef(Strict):
    type: Literal["user", "group"]
    id: uuid.UUID


class ScopeRef(Strict):
    type: Literal["global", "tenant", "resource"]
    tenant_id: uuid.UUID | None = None
    resource_id: uuid.UUID | None = None


class GrantCreate(Strict):
    principal: PrincipalRef
    role: SingleLine = Field(min_length=1, max_length=100)
    scope: ScopeRef | None = None


class ScopeOut(BaseModel):
    type: str
    tenant_id: uuid.UUID | None = None
    resource_id: uuid.UUID | None = None


class PrincipalOut(BaseModel):
    type: str
    id: uuid.UUID


class GrantOut(BaseModel):
    id: uuid.UUID
    principal: PrincipalOut
    role: str
    scope: ScopeOut

    @classmethod
    def of(cls, v: GrantView) -> GrantOut:
        return cls(
            id=v.id,
            principal=PrincipalOut(type=v.principal_type, id=v.principal_id),
            role=v.role,
            scope=ScopeOut(type=v.scope, tenant_id=v.tenant_id, resource_id=v.resource_id),
        )


class GroupCreate(Strict):
    name: SingleLine = Field(min_length=1, max_length=100)
    description: MultiLine = Field(default="", max_length=2000)


class GroupUpdate(Strict):
    name: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    description: MultiLine | None = Field(default=None, max_length=2000)


class GroupOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str


class GroupMemberAdd(Strict):
    user_id: uuid.UUID


class GroupMemberOut(BaseModel):
    user_id: uuid.UUID
    email: str


class ExplainIn(Strict):
    user_id: uuid.UUID
    permission: SingleLine = Field(min_length=1, max_length=100)
    tenant: SingleLine | None = Field(default=None, max_length=100, description="tenant id or slug")
    resource: uuid.UUID | None = None


class ExplainGrantOut(BaseModel):
    role: str
    scope: ScopeOut
    via_group: uuid.UUID | None = None


class ExplainAliasOut(BaseModel):
    """For an alias user: both halves of the ceiling."""

    parent_id: uuid.UUID
    role_allows: bool = Field(description="its alias role names the permission")
    parent_holds: bool = Field(description="its parent holds the permission at this scope")
    parent_grants: list[ExplainGrantOut]
    restricted_to_resources: bool


class ExplainOut(BaseModel):
    allowed: bool
    grants: list[ExplainGrantOut]
    reasons: list[str]
    alias: ExplainAliasOut | None = None
