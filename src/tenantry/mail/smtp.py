"""Deliver one message: over SMTP when configured, otherwise into a file outbox (and the log)."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlparse

from tenantry.config import Settings
from tenantry.db.tables import OutboxMessage
from tenantry.mail.render import header_safe

log = logging.getLogger("tenantry.mail")


def from_header(msg: OutboxMessage, sender: str) -> str:
    """The deployment's address; the display name is the tenant's sender name when it has one."""
    if not msg.sender_name:
        return header_safe(sender)
    _name, address = parseaddr(sender)
    return formataddr((header_safe(msg.sender_name), address or sender))


def build(msg: OutboxMessage, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = from_header(msg, sender)
    if msg.reply_to:
        email["Reply-To"] = header_safe(msg.reply_to)
    email["To"] = header_safe(msg.to_addr)
    email["Subject"] = header_safe(msg.subject)  # rows queued before the subject was cleaned, too
    email["Message-ID"] = make_msgid(idstring=str(msg.id))
    email.set_content(msg.body_text)
    if msg.body_html:
        email.add_alternative(msg.body_html, subtype="html")
    return email


def send(msg: OutboxMessage, settings: Settings, *, sender: str | None = None) -> None:
    """Raise on failure; the delivery job retries with backoff. `sender`: the system's current
    `mail.sender` setting (defaults to TENANTRY_MAIL_FROM)."""
    email = build(msg, sender or settings.mail_from)
    if not settings.smtp_url:
        folder = Path(settings.outbox_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{msg.id}.eml").write_bytes(bytes(email))
        log.info("mail written to file outbox", extra={"fields": {"to": msg.to_addr, "kind": msg.kind}})
        return
    url = urlparse(settings.smtp_url)
    port = url.port or (465 if url.scheme == "smtps" else 25)
    cls = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with cls(url.hostname or "127.0.0.1", port, timeout=settings.smtp_timeout_seconds) as smtp:
        if url.scheme == "smtp" and "starttls=1" in (url.query or ""):
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(email)
