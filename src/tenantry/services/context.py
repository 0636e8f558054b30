"""What every service call carries: the session, who acts, in which tenant, from where."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from tenantry.authz import Principal
from tenantry.authz import engine as authz
from tenantry.db import scoping
from tenantry.db import session as db_session

if TYPE_CHECKING:
    from tenantry.config import Settings
    from tenantry.db.tables import Tenant


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    path: str | None = None  # where the call came from (URL path, console page), for security logs


@dataclass
class ServiceContext:
    session: Session
    principal: Principal
    tenant: Tenant | None = None
    meta: RequestMeta = field(default_factory=RequestMeta)

    @property
    def settings(self) -> Settings:
        """The deployment's settings, as given to whoever opened this session (app, CLI, worker)."""
        return self.session.info[db_session.SETTINGS]  # type: ignore[no-any-return]

    @property
    def tenant_id(self) -> uuid.UUID | None:
        return self.tenant.id if self.tenant is not None else None

    def enter(self, tenant: Tenant) -> None:
        """Select the tenant this context works in; arms the data layer's scoping."""
        self.tenant = tenant
        scoping.enter_tenant(self.session, tenant.id)

    def require(self, perm: str, *, tenant_id: uuid.UUID | None = None, global_scope: bool = False) -> None:
        """Ask the engine; by default in this context's tenant, or at global scope."""
        scope = None if global_scope else (tenant_id or self.tenant_id)
        authz.require(self.session, self.principal, perm, scope)

    def can(self, perm: str, *, tenant_id: uuid.UUID | None = None, global_scope: bool = False) -> bool:
        scope = None if global_scope else (tenant_id or self.tenant_id)
        authz.mark_decided(perm)  # a question answered by the engine is a decision, too
        return authz.check(self.session, self.principal, perm, scope)

    def after_commit(self, hook: Callable[[], None]) -> None:
        db_session.after_commit(self.session, hook)

    def commit(self) -> None:
        db_session.commit(self.session)
