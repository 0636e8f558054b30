"""The audit log's hash chains: one per stream (a tenant's events, or the global ones).

Each event stores its stream's sequence number `seq` (1, 2, …), the hash of its predecessor
`prev_hash` (`GENESIS` for the first) and its own `hash`: SHA-256 over a canonical JSON of its
content, `seq` and `prev_hash` included. Changing, removing or inserting an event anywhere breaks
the link after it; `audit_chain_heads` holds each stream's last (seq, hash), so removing the
newest events shows too.

Appending is serialised per stream: just before a flush writes new events, their stream's head
row is read `FOR UPDATE` (one statement per stream and flush; SQLite's single writer lock does
the same), and a trigger on `audit_events` moves the head on, refusing any event that does not
extend it (so concurrent writers can never fork a chain).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tenantry.db.tables.audit import AuditChainHead, AuditEvent
from tenantry.db.types import utcnow
from tenantry.ids import uuid7

GLOBAL_STREAM = uuid.UUID(int=0)  # the stream key of events without a tenant
GENESIS = "0" * 64  # `prev_hash` of a stream's first event

# The content a hash covers, in the order of the columns (the JSON is key-sorted anyway).
HASHED = (
    "id",
    "occurred_at",
    "tenant_id",
    "actor_type",
    "actor_id",
    "actor_label",
    "impersonator_id",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "ip",
    "user_agent",
    "request_id",
    "seq",
    "prev_hash",
)


def stream_of(tenant_id: uuid.UUID | None) -> uuid.UUID:
    return tenant_id if tenant_id is not None else GLOBAL_STREAM


def _canonical(value: Any) -> Any:
    """What the value reads back as from either database, so a hash made on write verifies later."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        when = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, float) and value.is_integer():
        return int(value)  # PostgreSQL's jsonb gives 1e20 back as an integer
    return value


def content_hash(fields: Mapping[Any, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an event's `HASHED` fields."""
    doc = {name: _canonical(fields.get(name)) for name in HASHED}
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(data.encode()).hexdigest()


def event_fields(ev: AuditEvent) -> dict[str, Any]:
    return {name: getattr(ev, name) for name in HASHED}


def _heads(session: Session, streams: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[int, str]]:
    """Lock and read the heads of `streams`, creating the missing ones (seq 0) first."""
    wanted = sorted(set(streams))  # one lock order for every writer: no deadlock between them
    stmt = (
        select(AuditChainHead.stream, AuditChainHead.seq, AuditChainHead.hash)
        .where(AuditChainHead.stream.in_(wanted))
        .order_by(AuditChainHead.stream)
        .with_for_update()
    )
    found = {row.stream: (row.seq, row.hash) for row in session.execute(stmt)}
    missing = [s for s in wanted if s not in found]
    if missing:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert(AuditChainHead)
            .values([{"stream": s, "seq": 0, "hash": GENESIS} for s in missing])
            .on_conflict_do_nothing()
        )
        found |= {row.stream: (row.seq, row.hash) for row in session.execute(stmt)}
    return found


@event.listens_for(Session, "before_flush")
def _chain_new_events(session: Session, _ctx: Any, _instances: Any) -> None:
    """Give every new event its place in its stream's chain, just before it is written."""
    new = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if not new:
        return
    # The flush inserts in the order the events were added; the chain follows that order.
    new.sort(key=lambda ev: inspect(ev).insert_order or 0)
    heads = _heads(session, (stream_of(ev.tenant_id) for ev in new))
    for ev in new:
        if ev.id is None:
            ev.id = uuid7()
        if ev.occurred_at is None:
            ev.occurred_at = utcnow()
        ev.occurred_at = ev.occurred_at.astimezone(UTC)
        stream = stream_of(ev.tenant_id)
        seq, prev = heads[stream]
        ev.seq, ev.prev_hash = seq + 1, prev
        ev.hash = content_hash(event_fields(ev))
        heads[stream] = (ev.seq, ev.hash)
