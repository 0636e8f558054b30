"""The only writer of audit events, and their readers (list, export, verify); traces of refusals.

`record()` adds the event to the caller's session, so it commits or rolls back together with
the change it describes. Secrets are redacted before anything is stored. Refusals leave a
trace too: the engine's 403s as `authz.denied` events (`record_denial`), 404s that hide another
tenant's object as warnings on the `tenantry.security` logger (`note_hidden`); both are
rate-limited (`services/sampling.py`) so a scanner cannot flood the table or the log.

Events form one hash chain per tenant and one for the global events (`db/audit_chain.py` links
them as they are flushed); `verify_chains` walks them and names the first broken link.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, select, tuple_
from sqlalchemy.orm import Session

from tenantry.authz import Perm, Principal
from tenantry.authz.engine import Denial
from tenantry.db import audit_chain
from tenantry.db.engine import sqlite_write_intent
from tenantry.db.session import SETTINGS, Database
from tenantry.db.tables import AuditChainHead, AuditEvent
from tenantry.security.redact import redact
from tenantry.services import sampling
from tenantry.services.context import RequestMeta, ServiceContext
from tenantry.services.pagination import Page, decode_uuid_cursor, encode_cursor

security_log = logging.getLogger("tenantry.security")

DENIED = "authz.denied"
# Traces per key (actor, permission(s), tenant — or actor and kind for hidden objects) and
# overall, per minute; held-back ones are counted into the next trace's `suppressed`.
TRACES_PER_KEY_PER_MINUTE = 5
TRACES_PER_MINUTE = 300


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, on both sides."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    ctx: ServiceContext,
    action: str,
    *,
    target_type: str = "",
    target_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    tenant_id: uuid.UUID | object | None = ...,
) -> AuditEvent:
    p = ctx.principal
    event = AuditEvent(
        tenant_id=ctx.tenant_id if tenant_id is ... else tenant_id,
        actor_type=p.kind if p.key_id is None else "api_key",
        actor_id=p.key_id or p.user_id,
        actor_label=p.label,
        impersonator_id=p.impersonator_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        before=redact(_jsonable(before)) if before is not None else None,
        after=redact(_jsonable(after)) if after is not None else None,
        ip=ctx.meta.ip,
        user_agent=(ctx.meta.user_agent or "")[:512] or None,
        request_id=ctx.meta.request_id,
    )
    ctx.session.add(event)
    return event


def record_apart(
    ctx: ServiceContext,
    action: str,
    *,
    target_type: str = "",
    target_id: object = None,
    after: dict[str, Any] | None = None,
    tenant_id: uuid.UUID | None = None,
) -> None:
    """Write one event now, in its own short transaction: for a request that never commits (a read).

    Unlike `record`, the event stays whatever becomes of the caller's transaction.
    """
    bind = ctx.session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    intent = sqlite_write_intent.set(True)  # a write, even when the request is a GET
    try:
        with Session(bind=engine, info={SETTINGS: ctx.session.info.get(SETTINGS)}) as session:
            apart = ServiceContext(session=session, principal=ctx.principal, meta=ctx.meta)
            record(
                apart, action, target_type=target_type, target_id=target_id, after=after, tenant_id=tenant_id
            )
            session.commit()
    finally:
        sqlite_write_intent.reset(intent)


@dataclass(frozen=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(ctx: ServiceContext, flt: AuditFilter) -> Select[AuditEvent]:
    """Tenant context → that tenant's events only; none → every event (superadmins)."""
    if ctx.tenant is not None:
        ctx.require(Perm.AUDIT_READ)
        stmt = select(AuditEvent).where(AuditEvent.tenant_id == ctx.tenant.id)
    else:
        ctx.require(Perm.AUDIT_READ, global_scope=True)
        stmt = select(AuditEvent)
    if flt.actor_id:
        stmt = stmt.where(AuditEvent.actor_id == flt.actor_id)
    if flt.action:
        stmt = stmt.where(
            AuditEvent.action.startswith(flt.action[:-1], autoescape=True)
            if flt.action.endswith("*")
            else AuditEvent.action == flt.action
        )
    if flt.target_type:
        stmt = stmt.where(AuditEvent.target_type == flt.target_type)
    if flt.target_id:
        stmt = stmt.where(AuditEvent.target_id == flt.target_id)
    if flt.since:
        stmt = stmt.where(AuditEvent.occurred_at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEvent.occurred_at < flt.until)
    return stmt


def list_events(ctx: ServiceContext, flt: AuditFilter, *, limit: int, cursor: str | None) -> Page[AuditEvent]:
    """Newest first; keyset on the time-ordered id."""
    stmt = _query(ctx, flt)
    if cursor:
        stmt = stmt.where(AuditEvent.id < decode_uuid_cursor(cursor, "audit"))
    rows = list(ctx.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=encode_cursor("audit", str(rows[-1].id)) if more else None)


def export_events(ctx: ServiceContext, flt: AuditFilter, *, chunk: int = 500) -> Iterator[AuditEvent]:
    """All matching events, oldest first, in chunks so memory stays flat.

    The permission check runs here, eagerly, so a caller can fail before streaming begins.
    """
    stmt = _query(ctx, flt).order_by(AuditEvent.id)
    return _chunks(ctx, stmt, chunk)


def _chunks(ctx: ServiceContext, stmt: Select[AuditEvent], chunk: int) -> Iterator[AuditEvent]:
    last: uuid.UUID | None = None
    while True:
        page = stmt if last is None else stmt.where(AuditEvent.id > last)
        rows = list(ctx.session.scalars(page.limit(chunk)))
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1].id


def as_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "occurred_at": event.occurred_at.isoformat(),
        "tenant_id": str(event.tenant_id) if event.tenant_id else None,
        "actor": {
            "type": event.actor_type,
            "id": str(event.actor_id) if event.actor_id else None,
            "label": event.actor_label,
        },
        "impersonator_id": str(event.impersonator_id) if event.impersonator_id else None,
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id},
        "before": event.before,
        "after": event.after,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
    }


# --- integrity ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain stops holding: the stream (tenant or None), the seq expected there, the
    event found at that place (None when there is none), and why."""

    tenant_id: uuid.UUID | None
    seq: int
    event_id: uuid.UUID | None
    reason: str  # missing_event | duplicate_seq | broken_link | hash_mismatch | head_mismatch | no_head


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    streams_checked: int
    events_checked: int
    first_broken: BrokenLink | None


_CHAIN_COLUMNS = [getattr(AuditEvent, name) for name in audit_chain.HASHED] + [AuditEvent.hash]


def verify_chains(
    ctx: ServiceContext, *, tenant_id: uuid.UUID | object | None = ..., chunk: int = 1000
) -> ChainReport:
    """Walk every chain (or the one of `tenant_id`; None = the global events) from its start.

    Global scope only (superadmins, the CLI): the answer speaks of every tenant. Reads in
    chunks, so memory stays flat however long the log; changes nothing.
    """
    ctx.require(Perm.AUDIT_READ, global_scope=True)
    session = ctx.session
    heads = {
        row.stream: (row.seq, row.hash)
        for row in session.execute(select(AuditChainHead.stream, AuditChainHead.seq, AuditChainHead.hash))
    }
    if tenant_id is ...:
        with_events = session.execute(select(AuditEvent.tenant_id).distinct()).scalars()
        streams = {audit_chain.stream_of(t) for t in with_events} | set(heads)
    else:
        streams = {audit_chain.stream_of(tenant_id)}  # type: ignore[arg-type]
    first: BrokenLink | None = None
    events = 0
    for stream in sorted(streams):  # the global chain (nil UUID) first
        broken, seen = _verify_stream(session, stream, heads.get(stream), chunk)
        events += seen
        first = first or broken
    return ChainReport(first is None, len(streams), events, first)


def _verify_stream(
    session: Session, stream: uuid.UUID, head: tuple[int, str] | None, chunk: int
) -> tuple[BrokenLink | None, int]:
    tenant = None if stream == audit_chain.GLOBAL_STREAM else stream
    where = AuditEvent.tenant_id.is_(None) if tenant is None else AuditEvent.tenant_id == tenant
    stmt = select(*_CHAIN_COLUMNS).where(where).order_by(AuditEvent.seq, AuditEvent.id)
    expected, prev, seen = 1, audit_chain.GENESIS, 0
    after: tuple[int, uuid.UUID] | None = None
    while True:
        page = stmt if after is None else stmt.where(tuple_(AuditEvent.seq, AuditEvent.id) > after)
        rows = session.execute(page.limit(chunk)).mappings().all()
        for row in rows:
            seen += 1
            reason = (
                "duplicate_seq"
                if row["seq"] < expected
                else "missing_event"
                if row["seq"] > expected
                else "broken_link"
                if row["prev_hash"] != prev
                else "hash_mismatch"
                if audit_chain.content_hash(row) != row["hash"]
                else None
            )
            if reason:
                return BrokenLink(tenant, expected, row["id"], reason), seen
            expected, prev = expected + 1, row["hash"]
        if len(rows) < chunk:
            break
        after = (rows[-1]["seq"], rows[-1]["id"])
    if head is None:
        return (BrokenLink(tenant, expected, None, "no_head") if seen else None), seen
    if head[0] >= expected:  # the newest events are gone
        return BrokenLink(tenant, expected, None, "missing_event"), seen
    if head != (expected - 1, prev):
        return BrokenLink(tenant, expected - 1, None, "head_mismatch"), seen
    return None, seen


def report_as_dict(report: ChainReport) -> dict[str, Any]:
    b = report.first_broken
    return {
        "ok": report.ok,
        "streams_checked": report.streams_checked,
        "events_checked": report.events_checked,
        "first_broken": None
        if b is None
        else {
            "tenant_id": str(b.tenant_id) if b.tenant_id else None,
            "seq": b.seq,
            "event_id": str(b.event_id) if b.event_id else None,
            "reason": b.reason,
        },
    }


# --- traces of refusals ---------------------------------------------------------------------------

_samplers: dict[str, sampling.Sampler] = {}
_samplers_lock = threading.Lock()


def _sampler(kind: str, redis_url: str | None) -> sampling.Sampler:
    """The process's limiter for one kind of trace, built on first use (Redis when configured)."""
    with _samplers_lock:
        if kind not in _samplers:
            _samplers[kind] = sampling.build(
                redis_url, TRACES_PER_KEY_PER_MINUTE, TRACES_PER_MINUTE, f"tenantry:trace:{kind}"
            )
        return _samplers[kind]


def set_sampler(kind: str, value: sampling.Sampler | None) -> None:
    """For tests: `denied` or `hidden`; None rebuilds it on next use."""
    with _samplers_lock:
        if value is None:
            _samplers.pop(kind, None)
        else:
            _samplers[kind] = value


def _actor(p: Principal) -> str:
    return f"{p.kind if p.key_id is None else 'api_key'}:{p.key_id or p.user_id or p.label}"


def record_denial(
    db: Database, denial: Denial, meta: RequestMeta, *, reason: str = "permission_denied"
) -> AuditEvent | None:
    """Leave an `authz.denied` event for a refusal of the engine; None when held back or failed.

    The refused request's transaction was rolled back (it must not keep half a change), so the
    event is written in its own short transaction. Never raises: a refusal stays a refusal even
    when its trace cannot be written.
    """
    settings = db.settings
    key = "|".join((_actor(denial.principal), ",".join(denial.permissions), str(denial.tenant_id)))
    try:
        suppressed = _sampler("denied", settings.redis_url if settings else None).admit(key)
        if suppressed is None:
            return None
        intent = sqlite_write_intent.set(True)  # a write, even when the refused request was a GET
        try:
            with db.unit_of_work() as session:
                ctx = ServiceContext(session=session, principal=denial.principal, meta=meta)
                detail: dict[str, Any] = {"reason": reason, "suppressed": suppressed}
                if len(denial.permissions) == 1:
                    detail["permission"] = denial.permissions[0]
                else:
                    detail["permissions"] = list(denial.permissions)
                return record(
                    ctx,
                    DENIED,
                    target_type="resource" if denial.resource_id else "",
                    target_id=denial.resource_id,
                    after=detail,
                    tenant_id=denial.tenant_id,
                )
        finally:
            sqlite_write_intent.reset(intent)
    except Exception:
        security_log.exception(
            "could not record a denial", extra={"fields": {"actor": _actor(denial.principal)}}
        )
        return None


def note_hidden(ctx: ServiceContext, kind: str, ref: object) -> None:
    """Warn that `kind` `ref` exists but lies beyond what the principal may see.

    The caller still answers 404 (DESIGN §2: do not reveal it exists); the warning is for whoever
    watches for a principal probing other tenants. Rate-limited per (actor, kind) and overall.
    """
    actor = _actor(ctx.principal)
    suppressed = _sampler("hidden", ctx.settings.redis_url).admit(f"{actor}|{kind}")
    if suppressed is None:
        return
    security_log.warning(
        "cross-tenant lookup",
        extra={
            "fields": {
                "actor": actor,
                "actor_label": ctx.principal.label,
                "kind": kind,
                "requested": str(ref)[:200],
                "path": ctx.meta.path,
                "request_id": ctx.meta.request_id,
                "ip": ctx.meta.ip,
                "suppressed": suppressed,
            }
        },
    )
