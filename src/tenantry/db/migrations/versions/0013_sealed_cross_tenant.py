"""row-level security: a cross-tenant switch that SQL alone cannot forge (PostgreSQL)

Before, the policies let a row through when `tenantry.cross_tenant = 'on'`, which the
application's role could set itself: one injected statement could switch isolation off for its
transaction. Now the policies accept only a proof bound to this backend and this transaction,
computed from a per-deployment secret that only the owner can read, and the proof is set only by
`tenantry_cross_tenant(key)`, which wants the key the connection was handed when it was opened:

- `tenantry_private` (no USAGE for anyone but the owner) holds `deployment_secret` (random,
  made here) and `cross_tenant_keys` (one key hash per backend);
- `tenantry_cross_tenant_key()` hands a connection its key once; the application calls it as it
  opens every connection (`db/engine.py`), before any statement of a request can run on it;
- `tenantry_cross_tenant(key)` checks the key and sets `tenantry.cross_tenant` to
  sha256(secret ‖ sha256(secret ‖ pid:transaction start)), for this transaction only;
- `tenantry_cross_tenant_active()` recomputes that proof; every `tenant_isolation` policy asks it.

Nothing to provision by hand: the secret is made here, the keys at connect. SQLite has no RLS.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from tenantry.db import rls

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    "CREATE SCHEMA tenantry_private",
    "REVOKE ALL ON SCHEMA tenantry_private FROM PUBLIC",
    "CREATE TABLE tenantry_private.deployment_secret ("
    " id integer PRIMARY KEY CHECK (id = 1), secret bytea NOT NULL)",
    "INSERT INTO tenantry_private.deployment_secret (id, secret) VALUES (1, sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')))",
    "CREATE TABLE tenantry_private.cross_tenant_keys ("
    " pid integer PRIMARY KEY, key_hash bytea NOT NULL, minted_at timestamptz NOT NULL DEFAULT now())",
    """
    CREATE FUNCTION tenantry_private.cross_tenant_proof() RETURNS text
    LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
      SELECT encode(sha256(s.secret || sha256(s.secret || convert_to(
               'cross-tenant:' || pg_backend_pid() || ':' || extract(epoch FROM now())::text, 'UTF8'))), 'hex')
        FROM tenantry_private.deployment_secret s
    $$
    """,
    "REVOKE ALL ON FUNCTION tenantry_private.cross_tenant_proof() FROM PUBLIC",
    """
    CREATE FUNCTION tenantry_cross_tenant_key() RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DECLARE
      k text := encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex');
    BEGIN
      -- Keys of backends that are gone, so their pids can be used again.
      DELETE FROM tenantry_private.cross_tenant_keys c
       WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = c.pid);
      INSERT INTO tenantry_private.cross_tenant_keys (pid, key_hash)
      VALUES (pg_backend_pid(), sha256(convert_to(k, 'UTF8')));
      RETURN k;
    EXCEPTION WHEN unique_violation THEN
      RAISE EXCEPTION 'this connection has had its cross-tenant key already'
        USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE FUNCTION tenantry_cross_tenant(p_key text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM tenantry_private.cross_tenant_keys
                      WHERE pid = pg_backend_pid() AND key_hash = sha256(convert_to(p_key, 'UTF8'))) THEN
        RAISE EXCEPTION 'cross-tenant mode refused: not this connection''s key'
          USING ERRCODE = 'insufficient_privilege';
      END IF;
      RETURN set_config('tenantry.cross_tenant', tenantry_private.cross_tenant_proof(), true);
    END $$
    """,
    """
    CREATE FUNCTION tenantry_cross_tenant_active() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
      SELECT coalesce(current_setting('tenantry.cross_tenant', true), '') = tenantry_private.cross_tenant_proof()
    $$
    """,
]
DOWNGRADE = [
    "DROP FUNCTION tenantry_cross_tenant_active()",
    "DROP FUNCTION tenantry_cross_tenant(text)",
    "DROP FUNCTION tenantry_cross_tenant_key()",
    "DROP SCHEMA tenantry_private CASCADE",
]


def _policied_tables() -> list[str]:
    rows = op.get_bind().execute(
        text(
            "SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation'"
            " AND schemaname = current_schema() ORDER BY tablename"
        )
    )
    return [row[0] for row in rows]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for stmt in UPGRADE:
        op.execute(stmt)
    rls.enable(op.get_bind(), _policied_tables(), sealed=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    rls.enable(op.get_bind(), _policied_tables(), sealed=False)
    for stmt in DOWNGRADE:
        op.execute(stmt)
