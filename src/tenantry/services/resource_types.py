"""The resource type registry (superadmins): JSON Schema, unique fields, parent type, references."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
from sqlalchemy import select

from tenantry.authz import Perm
from tenantry.authz import cache as authz_cache
from tenantry.authz.catalog import register_resource_type
from tenantry.authz.engine import require_authenticated
from tenantry.db import scoping
from tenantry.db.tables import Resource, ResourceType
from tenantry.errors import Conflict, Invalid, NotFound, PreconditionFailed
from tenantry.services import audit
from tenantry.services.context import ServiceContext

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
RESERVED = frozenset(
    {
        "tenant",
        "user",
        "member",
        "role",
        "grant",
        "group",
        "audit",
        "settings",
        "trash",
        "alias",
        "impersonate",
        "resource_type",
        "shared_resource",
        "template",
        "system_settings",
    }
)

_IP = {"type": "string", "format": "ipv4"}
BUILTIN_TYPES: list[dict[str, Any]] = [
    {
        "key": "host",
        "name": "Host",
        "unique_fields": ["ip_address"],
        "cascade_delete": True,
        "schema": {
            "type": "object",
            "properties": {"ip_address": _IP, "os": {"type": "string"}},
            "additionalProperties": True,
        },
    },
    {
        "key": "service",
        "name": "Service",
        "parent_type": "host",
        "cascade_delete": True,
        "schema": {
            "type": "object",
            "properties": {
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "protocol": {"enum": ["tcp", "udp"]},
            },
        },
    },
    {
        "key": "alert",
        "name": "Alert",
        "parent_type": "service",
        "schema": {"type": "object", "properties": {"severity": {"enum": ["info", "warning", "critical"]}}},
    },
    {
        "key": "server",
        "name": "Server",
        "unique_fields": ["hostname"],
        "schema": {"type": "object", "properties": {"hostname": {"type": "string", "minLength": 1}}},
    },
    {"key": "project", "name": "Project", "schema": {"type": "object"}},
    {"key": "inventory", "name": "Inventory", "schema": {"type": "object"}},
    {
        "key": "deployment",
        "name": "Deployment",
        "references": {"project_id": "project", "inventory_id": "inventory"},
        "schema": {
            "type": "object",
            "required": ["project_id", "inventory_id"],
            "properties": {"project_id": {"type": "string"}, "inventory_id": {"type": "string"}},
        },
    },
]


def _no_retrieval(uri: str) -> Any:
    raise ValueError(f"references outside the schema are not allowed ({uri})")


def compile_schema(schema: dict[str, Any]) -> Any:
    """A fast (Rust) validator for a type's schema, which must itself be valid JSON Schema.

    jsonschema-rs checks the schema against its draft's meta-schema (2020-12 unless `$schema`
    names another) and resolves every `$ref` while compiling. It would fetch http(s) and file
    URIs for a `$ref` (SSRF, local file read), so retrieval is refused: only references inside
    the schema and the built-in meta-schemas resolve.
    """
    try:
        return jsonschema_rs.validator_for(schema, validate_formats=True, retriever=_no_retrieval)
    except jsonschema_rs.ValidationError as exc:
        raise Invalid(
            f"the schema is not valid JSON Schema: {exc.message}", code="invalid_schema", field="schema"
        ) from None


# type key -> (schema fingerprint, compiled validator). The fingerprint is the schema itself, not
# (key, version): a deleted and recreated type starts at version 1 again with another schema.
_validators: dict[str, tuple[str, Any]] = {}


def validator(rtype: ResourceType) -> Any:
    fingerprint = json.dumps(rtype.schema, sort_keys=True)
    hit = _validators.get(rtype.key)
    if hit is None or hit[0] != fingerprint:
        hit = _validators[rtype.key] = (fingerprint, compile_schema(rtype.schema))
    return hit[1]


def _get_type(ctx: ServiceContext, key: str) -> ResourceType:
    rtype = ctx.session.get(ResourceType, key)
    if rtype is None:
        raise NotFound("resource type")
    return rtype


def list_types(ctx: ServiceContext) -> list[ResourceType]:
    """Readable by anyone signed in: members need to know what they can create."""
    require_authenticated(ctx.principal)
    return list(ctx.session.scalars(select(ResourceType).order_by(ResourceType.key)))


def _validate(
    ctx: ServiceContext,
    *,
    key: str,
    schema: dict[str, Any],
    unique_fields: list[str],
    parent_type: str | None,
    references: dict[str, str],
) -> None:
    compile_schema(schema)
    for f in unique_fields + list(references):
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", f):
            raise Invalid(f"bad attribute name {f!r}", code="invalid_field", field="unique_fields")
    for target in [parent_type, *references.values()]:
        if target is not None and target != key and ctx.session.get(ResourceType, target) is None:
            raise Invalid(
                f"unknown resource type {target!r}", code="unknown_resource_type", field="parent_type"
            )


def create_type(
    ctx: ServiceContext,
    *,
    key: str,
    name: str,
    schema: dict[str, Any] | None = None,
    unique_fields: list[str] | None = None,
    parent_type: str | None = None,
    cascade_delete: bool = False,
    references: dict[str, str] | None = None,
    builtin: bool = False,
) -> ResourceType:
    ctx.require(Perm.RESOURCE_TYPE_MANAGE, global_scope=True)
    key = key.strip().lower()
    if not KEY_RE.match(key) or key in RESERVED:
        raise Invalid(
            "key must be 2-64 characters of a-z, 0-9 and _ and not a reserved word",
            code="invalid_type_key",
            field="key",
        )
    schema = schema if schema is not None else {"type": "object"}
    _validate(
        ctx,
        key=key,
        schema=schema,
        unique_fields=unique_fields or [],
        parent_type=parent_type,
        references=references or {},
    )
    if ctx.session.get(ResourceType, key) is not None:
        raise Conflict(f"resource type {key!r} exists", code="resource_type_exists", field="key")
    rtype = ResourceType(
        key=key,
        name=name.strip() or key,
        schema=schema,
        unique_fields=unique_fields or [],
        parent_type=parent_type,
        cascade_delete=cascade_delete,
        references=references or {},
        builtin=builtin,
    )
    ctx.session.add(rtype)
    ctx.session.flush()
    register_resource_type(key)
    authz_cache.bump(ctx.session)  # new permissions exist: other instances reload the registry
    audit.record(
        ctx,
        "resource_type.create",
        target_type="resource_type",
        target_id=key,
        after={"name": rtype.name, "unique_fields": rtype.unique_fields, "parent_type": parent_type},
        tenant_id=None,
    )
    return rtype


def _violations(ctx: ServiceContext, rtype: ResourceType, schema: dict[str, Any]) -> int:
    """How many live resources (any tenant) the new schema would reject — streamed, not loaded at once."""
    v = compile_schema(schema)
    bad = 0
    with scoping.cross_tenant(ctx.session):
        rows = ctx.session.execute(
            select(Resource.attributes).where(Resource.type == rtype.key).execution_options(yield_per=2000)
        )
        for (attrs,) in rows:
            if not v.is_valid(attrs):
                bad += 1
    return bad


def update_type(
    ctx: ServiceContext, key: str, changes: dict[str, Any], *, if_match: int | None = None
) -> ResourceType:
    ctx.require(Perm.RESOURCE_TYPE_MANAGE, global_scope=True)
    rtype = _get_type(ctx, key)
    if if_match is not None and if_match != rtype.version:
        raise PreconditionFailed("the resource type was changed by someone else; reload and retry")
    allowed = {"name", "schema", "unique_fields", "parent_type", "cascade_delete", "references"}
    if set(changes) - allowed:
        raise Invalid(
            "only name, schema, unique_fields, parent_type, cascade_delete and references change",
            code="field_not_editable",
        )
    merged = {k: changes.get(k, getattr(rtype, k)) for k in allowed}
    _validate(
        ctx,
        key=key,
        schema=merged["schema"],
        unique_fields=merged["unique_fields"],
        parent_type=merged["parent_type"],
        references=merged["references"],
    )
    if "schema" in changes:
        bad = _violations(ctx, rtype, changes["schema"])
        if bad:
            raise Conflict(
                f"{bad} existing resource(s) would violate the new schema",
                code="schema_violations",
                count=bad,
            )
    if "unique_fields" in changes and set(changes["unique_fields"]) != set(rtype.unique_fields):
        raise Conflict(
            "unique fields are fixed once a type exists; create a new type", code="unique_fields_fixed"
        )
    before = {k: getattr(rtype, k) for k in allowed}
    for k, v in changes.items():
        setattr(rtype, k, v)
    ctx.session.flush()
    b, a = audit.diff(before, {k: getattr(rtype, k) for k in allowed})
    if a:
        audit.record(
            ctx,
            "resource_type.update",
            target_type="resource_type",
            target_id=key,
            before=b,
            after=a,
            tenant_id=None,
        )
    return rtype


def delete_type(ctx: ServiceContext, key: str) -> None:
    ctx.require(Perm.RESOURCE_TYPE_MANAGE, global_scope=True)
    rtype = _get_type(ctx, key)
    if rtype.builtin:
        raise Conflict("built-in resource types stay", code="builtin_resource_type")
    with scoping.cross_tenant(ctx.session), scoping.include_deleted(ctx.session):
        used = ctx.session.scalar(select(Resource.id).where(Resource.type == key).limit(1))
    if used is not None:
        raise Conflict(
            "resources of this type exist (also in the trash); purge them first", code="type_in_use"
        )
    ctx.session.delete(rtype)
    ctx.session.flush()
    authz_cache.bump(ctx.session)
    audit.record(ctx, "resource_type.delete", target_type="resource_type", target_id=key, tenant_id=None)


def ensure_builtin_types(ctx: ServiceContext) -> int:
    """Create the built-in types that are missing (used by `tenantry init`; idempotent)."""
    ctx.require(Perm.RESOURCE_TYPE_MANAGE, global_scope=True)
    made = 0
    for spec in BUILTIN_TYPES:
        if ctx.session.get(ResourceType, spec["key"]) is None:
            create_type(ctx, builtin=True, **spec)
            made += 1
    return made


def get_type_visible(ctx: ServiceContext, key: str) -> ResourceType:
    require_authenticated(ctx.principal)
    return _get_type(ctx, key)
