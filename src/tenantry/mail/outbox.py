"""Queue a mail in the caller's transaction: it is sent only if the change commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry.db import scoping
from tenantry.db import session as db_session
from tenantry.db.tables import EmailTemplate, OutboxMessage
from tenantry.mail.identity import mail_language, tenant_mail_identity
from tenantry.mail.render import TemplateSource, render


def tenant_template(
    session: Session, tenant_id: uuid.UUID, kind: str, language: str
) -> tuple[TemplateSource, str] | None:
    """The tenant's own live template for this kind and language, if it has one."""
    with scoping.in_tenant(session, tenant_id):
        row = session.scalar(
            select(EmailTemplate).where(EmailTemplate.key == kind, EmailTemplate.language == language)
        )
    if row is None:
        return None
    return TemplateSource(row.subject, row.body_text, row.body_html), str(row.id)


def enqueue(
    session: Session,
    *,
    kind: str,
    to: str,
    context: dict[str, Any],
    language: str | None = None,
    tenant_id: uuid.UUID | None = None,
) -> OutboxMessage:
    """Render now (the user's language, else the tenant's default, else English) and queue."""
    identity = tenant_mail_identity(session, session.info[db_session.SETTINGS], tenant_id)
    lang = mail_language(language, identity)
    found = tenant_template(session, tenant_id, kind, lang) if tenant_id is not None else None
    rendered = render(
        kind,
        context,
        language=lang,
        identity=identity,
        override=found[0] if found else None,
        override_label=found[1] if found else "",
    )
    msg = OutboxMessage(
        tenant_id=tenant_id,
        kind=kind,
        to_addr=to,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        sender_name=identity.sender_name if tenant_id is not None else None,
        reply_to=identity.reply_to,
    )
    session.add(msg)
    return msg
