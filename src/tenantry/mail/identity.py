"""Who a tenant's mail comes from and how it looks: the one seam for every per-tenant mail input.

Today it reads the tenant's own columns and deployment defaults; the settings catalog
(`general.default_language`, `notifications.sender_name`/`reply_to`, branding,
`security.impersonation_notice_mail`) replaces the body of `tenant_mail_identity` and nothing else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tenantry.config import Settings
from tenantry.db.tables import Tenant

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


def _deployment_sender(settings: Settings) -> str:
    # `mail_from` is "Name <address>" or a bare address; the display name is the product's by default.
    name, _, rest = settings.mail_from.partition("<")
    return name.strip() if rest and name.strip() else "Tenantry"


def tenant_mail_identity(session: Session, settings: Settings, tenant_id: uuid.UUID | None) -> MailIdentity:
    """The sender name, reply-to, colour, logo and default language of a tenant's mail.

    Without a tenant (or for one that is gone): the deployment's defaults.
    """
    tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
    if tenant is None:
        return MailIdentity(
            sender_name=_deployment_sender(settings),
            reply_to=None,
            color=DEFAULT_COLOR,
            logo_url=None,
            default_language=DEFAULT_LANGUAGE,
            impersonation_notice=True,
        )
    return MailIdentity(
        sender_name=tenant.name,
        reply_to=None,
        color=tenant.branding_color or DEFAULT_COLOR,
        logo_url=tenant.branding_logo_url,
        default_language=DEFAULT_LANGUAGE,
        impersonation_notice=True,
    )


def mail_language(user_language: str | None, identity: MailIdentity) -> str:
    """The user's language, else the tenant's default, else English."""
    for candidate in (user_language, identity.default_language):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE
