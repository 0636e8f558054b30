"""Engine factory: SQLite pragmas for a safe embedded file, pool options for PostgreSQL."""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# SQLite: a transaction that reads and later writes can fail with SQLITE_BUSY when another
# writer committed in between (busy_timeout does not help a lock upgrade). Writers therefore
# take the write lock at BEGIN; requests known to be read-only clear this flag.
sqlite_write_intent: ContextVar[bool] = ContextVar("sqlite_write_intent", default=True)

# PostgreSQL: where a connection keeps the key to its cross-tenant switch (`db/rls.py`), in the
# pool's record of that connection (`PoolProxiedConnection.info`).
CROSS_TENANT_KEY = "tenantry_cross_tenant_key"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling defers BEGIN; take control so that
            # writers take the lock at BEGIN and SQLAlchemy's savepoints work.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_write_intent.get() else "BEGIN")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip on every checkout, i.e. on every request. A connection
    # that died (server restart) fails its first statement instead, and SQLAlchemy then
    # invalidates the whole pool, so one request sees the outage, not one per connection; a read
    # is then retried once on a fresh connection (api/routing.py), a write answers 503.
    kwargs.setdefault("pool_pre_ping", False)
    # A server that does not answer (restarting, unreachable) must not hold a request for
    # minutes: give up connecting after a bound; the request then answers 503.
    connect_args = dict(kwargs.pop("connect_args", None) or {})
    if "connect_timeout" not in parsed.query:
        connect_args.setdefault("connect_timeout", 5)
    kwargs["connect_args"] = connect_args
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _take_cross_tenant_key)
    return engine


def _take_cross_tenant_key(dbapi_conn: Any, record: Any) -> None:
    """Ask for this connection's cross-tenant key while nothing else has run on it.

    The database hands each connection its key once (migration 0013), so a statement that runs
    later on it — an injected one included — cannot get it. Before that migration there is no
    key, and crossing tenants fails closed.
    """
    import psycopg

    try:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT tenantry_cross_tenant_key()")
            record.info[CROSS_TENANT_KEY] = cur.fetchone()[0]
        dbapi_conn.commit()
    except psycopg.errors.UndefinedFunction:
        dbapi_conn.rollback()
