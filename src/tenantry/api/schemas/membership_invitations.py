"""Membership invitations: what the inviting admin sees, and what the invited account sees."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from tenantry.db.tables import MembershipInvitation
from tenantry.db.types import utcnow
from tenantry.services.membership_invitations import Joined, MyInvitation


def _status(inv: MembershipInvitation) -> Literal["invited", "expired"]:
    return "invited" if inv.expires_at > utcnow() else "expired"


class MemberInvitationOut(BaseModel):
    """The answer to adding an address: the same fields whether or not an account exists."""

    id: uuid.UUID
    email: str
    role: str
    status: Literal["invited", "expired"]
    invited_by: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, inv: MembershipInvitation) -> MemberInvitationOut:
        return cls(
            id=inv.id,
            email=inv.email,
            role=inv.role_key,
            status=_status(inv),
            invited_by=inv.invited_by,
            created_at=inv.created_at,
            expires_at=inv.expires_at,
        )


class InvitingTenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class MyInvitationOut(BaseModel):
    """An invitation to the caller's own account, under `/me/invitations`."""

    id: uuid.UUID
    tenant: InvitingTenantOut
    role: str
    invited_by: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, v: MyInvitation) -> MyInvitationOut:
        inv, t = v.invitation, v.tenant
        return cls(
            id=inv.id,
            tenant=InvitingTenantOut(id=t.id, slug=t.slug, name=t.name),
            role=inv.role_key,
            invited_by=inv.invited_by,
            created_at=inv.created_at,
            expires_at=inv.expires_at,
        )


class JoinedOut(BaseModel):
    """The tenant one has just joined by accepting."""

    tenant: InvitingTenantOut
    roles: list[str]
    is_default: bool

    @classmethod
    def of(cls, j: Joined) -> JoinedOut:
        t = j.tenant
        return cls(
            tenant=InvitingTenantOut(id=t.id, slug=t.slug, name=t.name),
            roles=[j.role],
            is_default=j.is_default,
        )
