"""The audit log page: the selected tenant's events (All-tenants mode: every event, for global
auditors) with filters (action, actor, date range), newest first by the service's cursor, and
links to the API's jsonl/csv export with the same filters (GET, signed in by the same cookie).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import Request, Response

from tenantry.db.tables import AuditEvent
from tenantry.services import audit
from tenantry.services.pagination import Page
from tenantry.web.console import PageCtx, TenantRequired, console_router, render, shell
from tenantry.web.i18n import _

router = console_router()

PAGE_SIZE = 50


def _day(raw: str, field: str, errors: dict[str, str]) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        errors[field] = _("Give a date as YYYY-MM-DD.")
        return None


@router.get("/audit")
def audit_page(
    ctx: PageCtx,
    request: Request,
    action: str = "",
    actor: str = "",
    since: str = "",
    until: str = "",
    cursor: str | None = None,
) -> Response:
    s = shell(ctx, request)
    if s.tenant is None and not s.all_mode:
        raise TenantRequired
    errors: dict[str, str] = {}
    actor_id = None
    if actor:
        try:
            actor_id = uuid.UUID(actor.strip())
        except ValueError:
            errors["actor"] = _("Give the actor's id (a UUID).")
    if len(action) > 64:
        errors["action"] = _("At most 64 characters.")
    start, end = _day(since, "since", errors), _day(until, "until", errors)
    if end is not None:
        end += timedelta(days=1)  # the "until" day is included
    values = {"action": action, "actor": actor, "since": since, "until": until}
    flt = audit.AuditFilter(actor_id=actor_id, action=action.strip() or None, since=start, until=end)
    if errors:
        flt = audit.AuditFilter()
        audit.list_events(ctx, flt, limit=1, cursor=None)  # the service still decides who may look
        page: Page[AuditEvent] = Page([], None)
        status = 400
    else:
        page = audit.list_events(ctx, flt, limit=PAGE_SIZE, cursor=cursor)
        status = 200
    api = f"/api/v1/tenants/{s.tenant.slug}/audit" if s.tenant is not None else "/api/v1/audit"
    query = {k: v for k, v in _api_filter(flt).items() if v}
    next_query = urlencode({**{k: v for k, v in values.items() if v}, "cursor": page.next_cursor or ""})
    return render(
        request,
        "audit.html",
        status=status,
        shell=s,
        events=page.items,
        next_href=f"/audit?{next_query}" if page.next_cursor else None,
        export_jsonl=f"{api}?{urlencode({**query, 'format': 'jsonl'})}",
        export_csv=f"{api}?{urlencode({**query, 'format': 'csv'})}",
        values=values,
        errors=errors,
    )


def _api_filter(flt: audit.AuditFilter) -> dict[str, str]:
    return {
        "action": flt.action or "",
        "actor_id": str(flt.actor_id) if flt.actor_id else "",
        "since": flt.since.isoformat() if flt.since else "",
        "until": flt.until.isoformat() if flt.until else "",
    }
