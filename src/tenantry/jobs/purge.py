"""Purge trash batches older than the retention period; leases keep instances from colliding."""

from __future__ import annotations

import logging

from tenantry.authz import system_principal
from tenantry.db.session import Database
from tenantry.services import trash
from tenantry.services.context import ServiceContext

log = logging.getLogger("tenantry.jobs.purge")


def purge_expired(db: Database) -> int:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("retention"))
        claimed = [b.id for b in trash.due_for_purge(ctx)]
    done = 0
    for batch_id in claimed:
        with db.unit_of_work() as session:  # one transaction per batch: all or nothing
            ctx = ServiceContext(session=session, principal=system_principal("retention"))
            batch = session.get(trash.DeletionBatch, batch_id)
            if batch is None or batch.purged_at is not None or batch.restored_at is not None:
                continue
            counts = trash.purge_batch(ctx, batch_id, confirm=True)
            log.info("purged batch", extra={"fields": {"batch": str(batch_id), "counts": counts}})
            done += 1
    return done
