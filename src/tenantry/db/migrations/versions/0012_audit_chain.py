"""audit: per-stream hash chains, their heads, and append-only events

Every tenant's events (and the global ones) become a hash chain (`db/audit_chain.py`): `seq`,
`prev_hash` and `hash` on each event, computed here for the events that already exist (in
(occurred_at, id) order), and `audit_chain_heads` with each chain's newest link. A trigger makes
every insert extend its chain's head. On PostgreSQL, events become append-only: UPDATE, DELETE
and TRUNCATE are revoked from every role but the owner, and a trigger refuses them even for the
owner unless `SET LOCAL tenantry.audit_maintenance = 'on'` (README, "Audit log").

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db import audit_chain
from tenantry.db.types import JSONType, UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_events = sa.table(
    "audit_events",
    sa.column("id", sa.Uuid()),
    sa.column("occurred_at", UTCDateTime()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("actor_type", sa.String()),
    sa.column("actor_id", sa.Uuid()),
    sa.column("actor_label", sa.String()),
    sa.column("impersonator_id", sa.Uuid()),
    sa.column("action", sa.String()),
    sa.column("target_type", sa.String()),
    sa.column("target_id", sa.String()),
    sa.column("before", JSONType),
    sa.column("after", JSONType),
    sa.column("ip", sa.String()),
    sa.column("user_agent", sa.String()),
    sa.column("request_id", sa.String()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)
_heads = sa.table(
    "audit_chain_heads",
    sa.column("stream", sa.Uuid()),
    sa.column("seq", sa.BigInteger()),
    sa.column("hash", sa.String()),
)

PG_FUNCTIONS = [
    """
    CREATE OR REPLACE FUNCTION tenantry_audit_append() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE audit_chain_heads SET seq = NEW.seq, hash = NEW.hash
       WHERE stream = coalesce(NEW.tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
         AND seq = NEW.seq - 1 AND hash = NEW.prev_hash;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'audit event % does not extend the head of its chain', NEW.id
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION tenantry_audit_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF coalesce(current_setting('tenantry.audit_maintenance', true), '') <> 'on' THEN
        RAISE EXCEPTION 'audit events are append-only: % refused (see "Audit log" in the README)', TG_OP
          USING ERRCODE = 'insufficient_privilege';
      END IF;
      IF TG_OP = 'DELETE' THEN
        RETURN OLD;
      END IF;
      RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER audit_events_append BEFORE INSERT ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION tenantry_audit_append()",
    "CREATE TRIGGER audit_events_immutable BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION tenantry_audit_immutable()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION tenantry_audit_immutable()",
    # Whoever was granted more than SELECT and INSERT on the events (the application's role,
    # PUBLIC) loses it; `db/migrate.grant_app_role` no longer hands it out either.
    """
    DO $$
    DECLARE r record;
    BEGIN
      FOR r IN
        SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.oid = 'audit_events'::regclass AND a.grantee <> c.relowner
           AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
      LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM %s',
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.grantee::regrole::text) END);
      END LOOP;
    END $$
    """,
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_immutable ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_append ON audit_events",
    "DROP FUNCTION IF EXISTS tenantry_audit_immutable()",
    "DROP FUNCTION IF EXISTS tenantry_audit_append()",
]
SQLITE_TRIGGER = """
CREATE TRIGGER audit_events_append BEFORE INSERT ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit event does not extend the head of its chain')
   WHERE NOT EXISTS (
     SELECT 1 FROM audit_chain_heads
      WHERE stream = coalesce(NEW.tenant_id, '00000000000000000000000000000000')
        AND seq = NEW.seq - 1 AND hash = NEW.prev_hash);
  UPDATE audit_chain_heads SET seq = NEW.seq, hash = NEW.hash
   WHERE stream = coalesce(NEW.tenant_id, '00000000000000000000000000000000');
END
"""


def _backfill() -> dict[object, tuple[int, str]]:
    """Chain the events that exist, per stream in (occurred_at, id) order."""
    bind = op.get_bind()
    heads: dict[object, tuple[int, str]] = {}
    rows = bind.execute(sa.select(_events).order_by(_events.c.occurred_at, _events.c.id)).mappings().all()
    for row in rows:
        stream = audit_chain.stream_of(row["tenant_id"])
        seq, prev = heads.get(stream, (0, audit_chain.GENESIS))
        fields = dict(row) | {"seq": seq + 1, "prev_hash": prev}
        digest = audit_chain.content_hash(fields)
        bind.execute(
            _events.update().where(_events.c.id == row["id"]).values(seq=seq + 1, prev_hash=prev, hash=digest)
        )
        heads[stream] = (seq + 1, digest)
    return heads


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("stream", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_audit_chain_heads")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    heads = _backfill()
    if heads:
        op.bulk_insert(_heads, [{"stream": s, "seq": seq, "hash": h} for s, (seq, h) in heads.items()])
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index("ix_audit_events_tenant_id_seq", ["tenant_id", "seq"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_FUNCTIONS:
            op.execute(stmt)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_DROP:
            op.execute(stmt)
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_append")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_tenant_id_seq")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.drop_column("seq")
    op.drop_table("audit_chain_heads")
