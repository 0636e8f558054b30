"""New password hashes, made outside any write transaction.

argon2 costs tens of milliseconds of CPU by design. On SQLite a writing request holds the
database's only write lock from BEGIN to COMMIT, so a hash made inside it queues every other
writer (sign-ins included, across all workers) behind it; on PostgreSQL it would keep row locks
that long. The services therefore hash before their unit of work writes: whatever was only read
so far is committed (nothing), the hash is made, and the next statement opens a new
transaction, in which the service re-checks what it read before (the link still unused, the
email still free, …).
"""

from __future__ import annotations

from tenantry.db import session as db_session
from tenantry.security.passwords import hash_password
from tenantry.services.context import ServiceContext


def hash_new_password(ctx: ServiceContext, password: str) -> str:
    """The argon2 hash of `password`, made with no transaction open when possible.

    Callers have authorized and validated, and have not written yet. If the unit of work has
    written already (e.g. `tenantry init` creating a tenant and then its admin in one
    transaction), it is kept whole and the hash is made inside it: correctness first.
    """
    db_session.release(ctx.session)
    return hash_password(password, ctx.settings)
