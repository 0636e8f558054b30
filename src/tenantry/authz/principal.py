"""Who is acting: computed once per request or command, then only read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

PrincipalKind = Literal["user", "alias", "api_key", "system", "anonymous"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    user_id: uuid.UUID | None = None
    label: str = ""
    is_superadmin: bool = False
    # Set for API keys: `read` keys may only use read permissions; a key may be tied to one tenant.
    # A read-only impersonation has `key_scope="read"` too (and `impersonator_id`, no key).
    key_id: uuid.UUID | None = None
    key_scope: Literal["read", "read_write"] = "read_write"
    key_tenant_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    impersonator_id: uuid.UUID | None = None
    # Alias users: the parent whose effective permissions cap this principal's (a later issue).
    ceiling_user_id: uuid.UUID | None = None
    # A session that may only finish the 2FA set-up its tenant demands (or sign out).
    restricted: bool = False

    @cached_property
    def cache_key(self) -> str:
        """Only what changes permissions (not the session or label): one key for all of a user's logins."""

        def hx(u: uuid.UUID | None) -> str:
            return u.hex if u else "-"

        return "|".join(
            (
                self.kind,
                hx(self.user_id),
                "S" if self.is_superadmin else "-",
                self.key_scope,
                hx(self.key_tenant_id),
                hx(self.ceiling_user_id),
                "R" if self.restricted else "-",
            )
        )

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    @staticmethod
    def nobody() -> Principal:
        return Principal(kind="anonymous")


def system_principal(reason: str = "system") -> Principal:
    """Escape: the system itself acting (init, jobs). Allowed everything; audited as `system`."""
    return Principal(kind="system", label=reason, is_superadmin=True)
