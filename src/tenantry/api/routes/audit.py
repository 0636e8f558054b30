"""`/api/v1/audit` and `/api/v1/tenants/{tenant}/audit`: filtered pages and streamed export;
`/api/v1/audit/verify`: the hash chains checked."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import IsoDateTime, Page
from tenantry.api.schemas.audit import AuditEventOut, ChainReportOut
from tenantry.db import scoping
from tenantry.services import audit
from tenantry.services.context import ServiceContext

router = APIRouter(tags=["audit"], route_class=ApiRoute)

CSV_COLUMNS = [
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
]


# A cell starting with one of these is a formula to Excel, LibreOffice or Google Sheets
# (OWASP "CSV injection"); tab and CR are stripped by some importers, exposing the next character.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with `'` so it stays text.

    Anyone can put such text into the log (a user agent, a resource name), and an auditor opens
    the export in a spreadsheet. Non-text values (numbers, None) are left as they are.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


async def audit_filter(
    actor_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target_type: Annotated[str | None, Query(max_length=64)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
) -> audit.AuditFilter:
    return audit.AuditFilter(actor_id, action, target_type, target_id, _utc(since), _utc(until))


def _utc(value: datetime | None) -> datetime | None:
    """A timestamp without an offset means UTC (the API's only time zone), never a 500."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


FilterDep = Annotated[audit.AuditFilter, Depends(audit_filter)]
Format = Literal["json", "jsonl", "csv"]


def _stream(request: Request, ctx: ServiceContext, flt: audit.AuditFilter, fmt: Format) -> StreamingResponse:
    audit.export_events(ctx, flt)  # authorizes now, before the first byte is sent
    db, principal, tenant = request.app.state.db, ctx.principal, ctx.tenant

    def rows() -> Iterator[str]:
        # The request's session may be closed once streaming starts; read with our own.
        with db.unit_of_work() as session:
            own = ServiceContext(session=session, principal=principal, meta=ctx.meta)
            if tenant is not None:
                own.tenant = tenant
                scoping.enter_tenant(session, tenant.id)
            if fmt == "csv":
                buf = io.StringIO()
                writer = csv.writer(buf)
                writer.writerow(CSV_COLUMNS)
                yield buf.getvalue()
            for event in audit.export_events(own, flt):
                d = audit.as_dict(event)
                if fmt == "jsonl":
                    yield json.dumps(d) + "\n"
                    continue
                buf = io.StringIO()
                csv.writer(buf).writerow(
                    csv_safe(cell)
                    for cell in [
                        d["id"],
                        d["occurred_at"],
                        d["tenant_id"],
                        d["actor"]["type"],
                        d["actor"]["id"],
                        d["actor"]["label"],
                        d["impersonator_id"],
                        d["action"],
                        d["target"]["type"],
                        d["target"]["id"],
                        json.dumps(d["before"]),
                        json.dumps(d["after"]),
                        d["ip"],
                        d["user_agent"],
                        d["request_id"],
                    ]
                )
                yield buf.getvalue()

    media = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
    ext = "jsonl" if fmt == "jsonl" else "csv"
    return StreamingResponse(
        rows(), media_type=media, headers={"Content-Disposition": f'attachment; filename="audit.{ext}"'}
    )


def _page(ctx: ServiceContext, flt: audit.AuditFilter, limit: int, cursor: str | None) -> Page[AuditEventOut]:
    page = audit.list_events(ctx, flt, limit=limit, cursor=cursor)
    return Page(items=[AuditEventOut(**audit.as_dict(e)) for e in page.items], next_cursor=page.next_cursor)


Limit = Annotated[int, Query(ge=1, le=500)]
# `format=jsonl|csv` streams the export in these types instead of a JSON page.
EXPORTS: dict[int | str, dict[str, Any]] = {200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}}
Cursor = Annotated[str | None, Query(max_length=200)]


@router.get("/api/v1/audit", response_model=Page[AuditEventOut], responses=EXPORTS)
def list_events(
    request: Request,
    ctx: CtxDep,
    flt: FilterDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    format: Format = "json",
) -> Page[AuditEventOut] | StreamingResponse:
    if format != "json":
        return _stream(request, ctx, flt, format)
    return _page(ctx, flt, limit, cursor)


@router.get("/api/v1/tenants/{tenant}/audit", response_model=Page[AuditEventOut], responses=EXPORTS)
def list_tenant_events(
    request: Request,
    ctx: TenantCtxDep,
    flt: FilterDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    format: Format = "json",
) -> Page[AuditEventOut] | StreamingResponse:
    if format != "json":
        return _stream(request, ctx, flt, format)
    return _page(ctx, flt, limit, cursor)


@router.get("/api/v1/audit/verify", response_model=ChainReportOut)
def verify(ctx: CtxDep) -> ChainReportOut:
    """Walk every tenant's chain and the global one; superadmins only. Read-only."""
    return ChainReportOut.model_validate(audit.report_as_dict(audit.verify_chains(ctx)))
