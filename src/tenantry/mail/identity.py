"""Who a tenant's mail comes from and how it looks: the one seam for every per-tenant mail input.

Everything comes from the settings catalog (`general.default_language`,
`notifications.sender_name`/`reply_to`, `branding`, `security.impersonation_notice_mail`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tenantry.config import Settings
from tenantry.db.tables import Tenant
from tenantry.services import settings as tenant_settings

DEFAULT_COLOR = "#2f6fde"
DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "de")


@dataclass(frozen=True)
class MailIdentity:
    sender_name: str
    reply_to: str | None
    color: str
    logo_url: str | None
    default_language: str
    impersonation_notice: bool


def _deployment_sender(mail_from: str) -> str:
    # The sender is "Name <address>" or a bare address; the display name is the product's by default.
    name, _, rest = mail_from.partition("<")
    return name.strip() if rest and name.strip() else "Tenantry"


def tenant_mail_identity(session: Session, settings: Settings, tenant_id: uuid.UUID | None) -> MailIdentity:
    """The sender name, reply-to, colour, logo and default language of a tenant's mail.

    Read from the settings catalog (the tenant's overrides over the system values, cached under
    the settings version); a tenant without a sender name of its own sends under its name.
    Without a tenant (or for one that is gone): the system values.
    """
    tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
    values = tenant_settings.effective(session, settings, tenant.id if tenant is not None else None)
    sender_name = values.notifications.sender_name or (
        tenant.name if tenant is not None else _deployment_sender(values.mail.sender)
    )
    return MailIdentity(
        sender_name=sender_name,
        reply_to=values.notifications.reply_to,
        color=values.branding.color or DEFAULT_COLOR,
        logo_url=values.branding.logo_url,
        default_language=values.general.default_language,
        impersonation_notice=values.security.impersonation_notice_mail,
    )


def mail_language(user_language: str | None, identity: MailIdentity) -> str:
    """The user's language, else the tenant's default, else English."""
    for candidate in (user_language, identity.default_language):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE
