"""Send queued mail. A lease on each message means several instances never send one twice."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from sqlalchemy import or_, select, update

from tenantry.config import Settings
from tenantry.db.session import SETTINGS, Database
from tenantry.db.tables import OutboxMessage
from tenantry.db.types import utcnow
from tenantry.mail import smtp
from tenantry.services import settings as tenant_settings

log = logging.getLogger("tenantry.jobs.outbox")
# A claim of `batch` messages must outlive sending them all one after another (SMTP timeout each),
# or another worker could claim and send a message twice.
LEASE = timedelta(minutes=5)
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def claim(db: Database, batch: int = 5) -> list[OutboxMessage]:
    """Take a lease on due messages in one short transaction."""
    return _claim(db, batch, db.settings)[0]


def _claim(db: Database, batch: int, settings: Settings | None) -> tuple[list[OutboxMessage], str | None]:
    """The leased messages and the system sender they go out under (settings `mail.sender`)."""
    now = utcnow()
    with db.unit_of_work() as session:
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            )
            .order_by(OutboxMessage.next_attempt_at)
            .limit(batch)
        )
        if db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list(session.scalars(due))
        if not ids:
            return [], None
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(locked_until=now + LEASE, locked_by=WORKER_ID)
        )
        messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
        system = tenant_settings.effective(session, settings or session.info[SETTINGS], None)
        return messages, system.mail.sender


def deliver_due(db: Database, settings: Settings) -> int:
    """Send what is due; returns how many were sent."""
    sent = 0
    messages, sender = _claim(db, 5, settings)
    for msg in messages:
        try:
            smtp.send(msg, settings, sender=sender)
        except Exception as exc:  # any transport error: retry later
            attempts = msg.attempts + 1
            give_up = attempts >= settings.mail_max_attempts
            with db.unit_of_work() as session:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == msg.id)
                    .values(
                        attempts=attempts,
                        last_error=f"{type(exc).__name__}: {exc}"[:2000],
                        next_attempt_at=utcnow() + backoff(attempts),
                        locked_until=None,
                        failed_at=utcnow() if give_up else None,
                    )
                )
            log.warning(
                "mail delivery failed",
                extra={"fields": {"to": msg.to_addr, "attempts": attempts, "error": str(exc)[:200]}},
            )
            continue
        with db.unit_of_work() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == msg.id)
                .values(sent_at=utcnow(), attempts=msg.attempts + 1, locked_until=None)
            )
        sent += 1
    return sent
