"""Decides which tenant's rows a Session can see. The only place that does.

Every ORM statement touching a TenantOwned table gets `tenant_id = :current`, and every
SoftDeletable table gets `deleted_at IS NULL`. A session with no tenant sees no tenant-owned
rows (fail closed). Crossing tenants is spelled `cross_tenant()`, seeing the trash
`include_deleted()`. On PostgreSQL the same context is mirrored into transaction-local
settings that row-level security (`db/rls.py`) checks as a second barrier.

The mirror is lazy: the settings are written just before the next statement that runs under a
context different from the one the transaction last wrote (one `set_config` round trip), not
on every switch. A transaction starts with both settings empty, which is exactly "no tenant,
not crossing": a request that never enters a tenant writes none at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, false, text
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from tenantry.db.base import SoftDeletable, TenantOwned
from tenantry.db.engine import CROSS_TENANT_KEY

_TENANT = "tenant_id"
_CROSS = "cross_tenant"
_DELETED = "include_deleted"
_MIRRORED = "rls_mirrored"  # what this transaction last wrote into the PostgreSQL settings
_UNKNOWN = object()  # after a savepoint ended: the settings may have been rolled back
_EMPTY = (None, False)  # a fresh transaction: both settings unset


@event.listens_for(Session, "do_orm_execute")
def _apply_scoping(state: ORMExecuteState) -> None:
    _mirror(state.session)
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
    _mirror(session)
    if session.info.get(_CROSS):
        return
    current = session.info.get(_TENANT)
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, TenantOwned) and obj.tenant_id != current:
            raise PermissionError("write to a tenant-owned row outside the session's tenant")


@event.listens_for(Session, "after_begin")
def _fresh_transaction(session: Session, _txn: Any, _connection: Any) -> None:
    session.info[_MIRRORED] = _EMPTY


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: Any) -> None:
    if transaction.nested:
        if _MIRRORED in session.info:
            session.info[_MIRRORED] = _UNKNOWN  # ROLLBACK TO SAVEPOINT restores older settings
    elif transaction.parent is None:
        session.info.pop(_MIRRORED, None)


def _mirror(session: Session) -> None:
    """Before a statement: bring PostgreSQL's settings in line with the session's context."""
    bind = session.bind
    if bind is None or bind.dialect.name != "postgresql":
        return
    mirrored = session.info.get(_MIRRORED)
    if mirrored is None:
        session.connection()  # begins the transaction now: `after_begin` records it as empty
        mirrored = session.info.get(_MIRRORED, _EMPTY)
    wanted = (session.info.get(_TENANT), bool(session.info.get(_CROSS)))
    if mirrored == wanted:
        return
    # Security: set_config(..., true) is transaction-local; a plain SET would leak into the
    # next transaction that reuses this pooled connection. Crossing tenants takes the key the
    # connection was handed when it was opened (db/engine.py): the policies (db/rls.py) ignore
    # a `tenantry.cross_tenant` set by hand. Either way one round trip.
    conn = session.connection()
    params = {"t": str(wanted[0]) if wanted[0] else ""}
    if wanted[1]:
        key = conn.connection.info.get(CROSS_TENANT_KEY)
        if key is None:
            raise PermissionError("this connection holds no cross-tenant key (database not migrated?)")
        stmt = "SELECT set_config('tenantry.tenant_id', :t, true), tenantry_cross_tenant(:k)"
        params["k"] = key
    else:
        stmt = (
            "SELECT set_config('tenantry.tenant_id', :t, true), set_config('tenantry.cross_tenant', '', true)"
        )
    conn.execute(text(stmt), params)
    session.info[_MIRRORED] = wanted


def enter_tenant(session: Session, tenant_id: uuid.UUID | None) -> None:
    """Arm the session for one tenant (or none: nothing tenant-owned is visible)."""
    session.info[_TENANT] = tenant_id


def current_tenant(session: Session) -> uuid.UUID | None:
    return session.info.get(_TENANT)


@contextmanager
def cross_tenant(session: Session) -> Iterator[Session]:
    """Escape: read or write across tenants. Callers must already have authorized this."""
    previous = session.info.get(_CROSS, False)
    session.info[_CROSS] = True
    try:
        yield session
    finally:
        session.info[_CROSS] = previous


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
