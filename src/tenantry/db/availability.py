"""Which database errors mean "the database cannot serve this now" (503) rather than a bug (500).

- The connection broke or could not be made (server restarting, network): a read may be
  repeated once on a fresh connection (api/routing.py); anything else answers 503
  `database_unavailable`.
- The database refuses writes (read-only transaction, disk full, …): 503 `database_read_only`;
  reads keep working.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

RETRY_PAUSE_SECONDS = 0.5
# SQLSTATEs: 08 connection exception, 57P01-57P03 admin/crash shutdown or cannot connect now,
# 53 insufficient resources (disk full, out of memory, too many connections), 25006 read-only
# transaction, 58030 I/O error.
_UNAVAILABLE_CLASSES = ("08", "57P")
_READ_ONLY = ("25006", "53100", "58030")
_SQLITE_READ_ONLY = ("readonly database", "database or disk is full", "disk i/o error")


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def connection_lost(exc: BaseException) -> bool:
    """The statement failed because the connection is gone or could not be opened."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    if state.startswith(_UNAVAILABLE_CLASSES):
        return True
    # psycopg raises OperationalError without a SQLSTATE when it cannot connect at all.
    return isinstance(exc, OperationalError) and not state and not read_only(exc)


def read_only(exc: BaseException) -> bool:
    """The database is up but refuses to write (read-only, out of disk)."""
    if not isinstance(exc, DBAPIError):
        return False
    state = _sqlstate(exc)
    if state in _READ_ONLY or state.startswith("53"):
        return True
    return any(text in str(exc.orig).lower() for text in _SQLITE_READ_ONLY)


def classify(exc: BaseException) -> str | None:
    """`database_read_only`, `database_unavailable`, or None for an ordinary error."""
    if read_only(exc):
        return "database_read_only"
    if connection_lost(exc):
        return "database_unavailable"
    if isinstance(exc, OperationalError):  # lock timeouts, "database is locked": transient
        return "database_unavailable"
    return None
