from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, JsonValue, StrictBool, StrictInt

from tenantry.api.schemas import JSON_INTEGER, JsonObject, SingleLine, Strict, TextMap
from tenantry.db.tables import DeletionBatch, Resource, ResourceType, SharedResource

# Tenant slots of a shared resource (the bounds inside the type, so Optional keeps them).
Capacity = Annotated[StrictInt, Field(ge=1, le=100_000), JSON_INTEGER]


def _object_schema() -> dict[str, JsonValue]:
    return {"type": "object"}


class ResourceTypeCreate(Strict):
    key: SingleLine = Field(min_length=2, max_length=64)
    name: SingleLine = Field(min_length=1, max_length=100)
    schema_: JsonObject = Field(default_factory=_object_schema, alias="schema")
    unique_fields: list[SingleLine] = Field(default_factory=list, max_length=20)
    parent_type: SingleLine | None = Field(default=None, max_length=64)
    cascade_delete: StrictBool = False
    references: TextMap = Field(default_factory=dict)


class ResourceTypeUpdate(Strict):
    name: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    schema_: JsonObject | None = Field(default=None, alias="schema")
    unique_fields: list[SingleLine] | None = Field(default=None, max_length=20)
    parent_type: SingleLine | None = Field(default=None, max_length=64)
    cascade_delete: StrictBool | None = None
    references: TextMap | None = None

    def changes(self) -> dict[str, Any]:
        out = {}
        for k in self.model_fields_set:
            out["schema" if k == "schema_" else k] = getattr(self, k)
        return {k: v for k, v in out.items() if v is not None or k == "parent_type"}


class ResourceTypeOut(BaseModel):
    key: str
    name: str
    schema_: dict[str, Any] = Field(serialization_alias="schema")
    unique_fields: list[str]
    parent_type: str | None
    cascade_delete: bool
    references: dict[str, str]
    builtin: bool

    @classmethod
    def of(cls, t: ResourceType) -> ResourceTypeOut:
        return cls(
            key=t.key,
            name=t.name,
            schema_=t.schema,
            unique_fields=t.unique_fields,
            parent_type=t.parent_type,
            cascade_delete=t.cascade_delete,
            references=t.references,
            builtin=t.builtin,
        )


class ResourceCreate(Strict):
    type: SingleLine = Field(min_length=1, max_length=64)
    name: SingleLine = Field(min_length=1, max_length=200)
    attributes: JsonObject = Field(default_factory=dict)
    parent_id: uuid.UUID | None = None


class ResourceUpdate(Strict):
    name: SingleLine | None = Field(default=None, min_length=1, max_length=200)
    attributes: JsonObject | None = None
    parent_id: uuid.UUID | None = None

    def changes(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in self.model_fields_set
            if getattr(self, k) is not None or k == "parent_id"
        }


class ResourceOut(BaseModel):
    id: uuid.UUID
    type: str
    name: str
    attributes: dict[str, Any]
    parent_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: Resource) -> ResourceOut:
        return cls(
            id=r.id,
            type=r.type,
            name=r.name,
            attributes=r.attributes,
            parent_id=r.parent_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class SharedResourceCreate(Strict):
    name: SingleLine = Field(min_length=1, max_length=200)
    type: SingleLine = Field(default="gateway", min_length=1, max_length=64)
    status: Literal["active", "maintenance", "offline"] = "active"
    capacity: Capacity = 1
    attributes: JsonObject = Field(default_factory=dict)


class SharedResourceUpdate(Strict):
    name: SingleLine | None = Field(default=None, min_length=1, max_length=200)
    status: Literal["active", "maintenance", "offline"] | None = None
    capacity: Capacity | None = None
    attributes: JsonObject | None = None

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}


class AssignmentIn(Strict):
    tenant_id: uuid.UUID


class AssignmentOut(BaseModel):
    tenant_id: uuid.UUID


class SharedResourceOut(BaseModel):
    id: uuid.UUID
    name: str
    type: str
    status: str
    capacity: int
    attributes: dict[str, Any]
    assignments: list[AssignmentOut]

    @classmethod
    def of(cls, s: SharedResource, tenants: list[uuid.UUID]) -> SharedResourceOut:
        return cls(
            id=s.id,
            name=s.name,
            type=s.type,
            status=s.status,
            capacity=s.capacity,
            attributes=s.attributes,
            assignments=[AssignmentOut(tenant_id=t) for t in tenants],
        )


class TrashRoot(BaseModel):
    type: str
    id: uuid.UUID
    name: str


class TrashBatchOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    root: TrashRoot
    counts: dict[str, int]
    deleted_by: str
    deleted_at: datetime
    purge_after: datetime

    @classmethod
    def of(cls, b: DeletionBatch) -> TrashBatchOut:
        return cls(
            id=b.id,
            tenant_id=b.tenant_id,
            root=TrashRoot(type=b.root_type, id=b.root_id, name=b.root_name),
            counts=b.counts,
            deleted_by=b.deleted_by,
            deleted_at=b.deleted_at,
            purge_after=b.purge_after,
        )


class RestoreOut(BaseModel):
    restored: dict[str, int]


class PurgeOut(BaseModel):
    purged: dict[str, int]
