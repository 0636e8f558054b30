"""Queue a mail in the caller's transaction: it is sent only if the change commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from tenantry.db.tables import OutboxMessage
from tenantry.mail.render import render


def enqueue(
    session: Session,
    *,
    kind: str,
    to: str,
    context: dict[str, Any],
    language: str = "en",
    tenant_id: uuid.UUID | None = None,
) -> OutboxMessage:
    rendered = render(kind, context, language=language)
    msg = OutboxMessage(
        tenant_id=tenant_id,
        kind=kind,
        to_addr=to,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
    )
    session.add(msg)
    return msg
