"""Decides which tenant's rows a Session can see. The only place that does.

Every ORM statement touching a TenantOwned table gets `tenant_id = :current`, and every
SoftDeletable table gets `deleted_at IS NULL`. A session with no tenant sees no tenant-owned
rows (fail closed). Crossing tenants is spelled `cross_tenant()`, seeing the trash
`include_deleted()`. On PostgreSQL the same context is mirrored into transaction-local
settings that row-level security (`db/rls.py`) checks as a second barrier.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, false, text
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from tenantry.db.base import SoftDeletable, TenantOwned

_TENANT = "tenant_id"
_CROSS = "cross_tenant"
_DELETED = "include_deleted"


@event.listens_for(Session, "do_orm_execute")
def _apply_scoping(state: ORMExecuteState) -> None:
    if state.is_column_load:
        return  # refreshes one row by its full primary key, which includes tenant_id
    # Relationship loads are scoped too: criteria propagated from the parent's query are those
    # of the moment it ran (perhaps inside `cross_tenant()`), and an object that was never
    # loaded by a query (added, merged) carries none at all.
    if not (state.is_select or state.is_update or state.is_delete):
        return
    info = state.session.info
    if not (info.get(_DELETED) or state.execution_options.get(_DELETED)):
        state.statement = state.statement.options(
            with_loader_criteria(SoftDeletable, lambda cls: cls.deleted_at.is_(None), include_aliases=True)
        )
    if info.get(_CROSS):
        return
    tenant_id = info.get(_TENANT)
    if tenant_id is None:
        state.statement = state.statement.options(
            with_loader_criteria(TenantOwned, lambda cls: false(), include_aliases=True)
        )
    else:
        state.statement = state.statement.options(
            with_loader_criteria(TenantOwned, lambda cls: cls.tenant_id == tenant_id, include_aliases=True)
        )


@event.listens_for(Session, "before_flush")
def _guard_writes(session: Session, _ctx: Any, _instances: Any) -> None:
    """Refuse to flush a tenant-owned row into a tenant other than the session's."""
    if session.info.get(_CROSS):
        return
    current = session.info.get(_TENANT)
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, TenantOwned) and obj.tenant_id != current:
            raise PermissionError("write to a tenant-owned row outside the session's tenant")


@event.listens_for(Session, "after_begin")
def _mirror_to_database(session: Session, _txn: Any, connection: Any) -> None:
    if connection.dialect.name == "postgresql":
        _set_pg(connection, session.info.get(_TENANT), bool(session.info.get(_CROSS)))


def _set_pg(connection: Any, tenant_id: uuid.UUID | None, cross: bool) -> None:
    # Security: set_config(..., true) is transaction-local; a plain SET would leak into the
    # next transaction that reuses this pooled connection.
    connection.execute(
        text(
            "SELECT set_config('tenantry.tenant_id', :t, true), set_config('tenantry.cross_tenant', :c, true)"
        ),
        {"t": str(tenant_id) if tenant_id else "", "c": "on" if cross else ""},
    )


def _sync(session: Session) -> None:
    # A transaction that failed (e.g. an IntegrityError on flush) only awaits its rollback; the
    # next one mirrors the context in `after_begin`. Touching it here would raise
    # PendingRollbackError from the escapes' `finally` and hide the original error.
    txn = session.get_transaction()
    if txn is not None and txn.is_active:
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            _set_pg(conn, session.info.get(_TENANT), bool(session.info.get(_CROSS)))


def enter_tenant(session: Session, tenant_id: uuid.UUID | None) -> None:
    """Arm the session for one tenant (or none: nothing tenant-owned is visible)."""
    session.info[_TENANT] = tenant_id
    _sync(session)


def current_tenant(session: Session) -> uuid.UUID | None:
    return session.info.get(_TENANT)


@contextmanager
def cross_tenant(session: Session) -> Iterator[Session]:
    """Escape: read or write across tenants. Callers must already have authorized this."""
    previous = session.info.get(_CROSS, False)
    session.info[_CROSS] = True
    _sync(session)
    try:
        yield session
    finally:
        session.info[_CROSS] = previous
        _sync(session)


@contextmanager
def in_tenant(session: Session, tenant_id: uuid.UUID) -> Iterator[Session]:
    """Temporarily switch the session to another tenant (e.g. a service acting for one)."""
    previous = session.info.get(_TENANT)
    enter_tenant(session, tenant_id)
    try:
        yield session
    finally:
        enter_tenant(session, previous)


@contextmanager
def include_deleted(session: Session) -> Iterator[Session]:
    """Escape: see soft-deleted rows too (trash, restore, purge)."""
    previous = session.info.get(_DELETED, False)
    session.info[_DELETED] = True
    try:
        yield session
    finally:
        session.info[_DELETED] = previous
