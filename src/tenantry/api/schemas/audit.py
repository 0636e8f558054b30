from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ActorOut(BaseModel):
    type: str
    id: str | None
    label: str


class TargetOut(BaseModel):
    type: str
    id: str | None


class AuditEventOut(BaseModel):
    id: str
    occurred_at: str
    tenant_id: str | None
    actor: ActorOut
    impersonator_id: str | None
    action: str
    target: TargetOut
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
    user_agent: str | None
    request_id: str | None


class BrokenLinkOut(BaseModel):
    tenant_id: str | None
    seq: int
    event_id: str | None
    reason: str


class ChainReportOut(BaseModel):
    ok: bool
    streams_checked: int
    events_checked: int
    first_broken: BrokenLinkOut | None
