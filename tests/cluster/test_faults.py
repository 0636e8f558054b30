"""Faults (issue 13, item 3): only processes and services this session started are stopped.

PostgreSQL restarts and read-only mode, SMTP outages and `kill -9` of an instance in the
middle of a tenant delete. The cluster fixture's PostgreSQL, Redis and SMTP sink are the
tests' own (tests/cluster/conftest.py).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter

import httpx
import pytest
from deploy.cluster import Cluster

from tests.cluster.conftest import OwnPostgres, OwnSmtp, client, needs_tools
from tests.cluster.test_cluster import address, make_user, sign_in

pytestmark = [pytest.mark.cluster, pytest.mark.fault, needs_tools]
PROBLEM = "application/problem+json"


def _wait_serving(cluster: Cluster, token: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    for port in (*cluster.instance_ports, cluster.proxy_port):
        while True:
            with client(port, token) as c:
                if c.get("/api/v1/me").status_code == 200:
                    break
            assert time.monotonic() < deadline, f"port {port} did not recover"
            time.sleep(0.2)


def test_postgres_restart_under_load_answers_503_and_recovers_without_restarts(
    cluster: Cluster, admin_token: str, own_pg: OwnPostgres
) -> None:
    _, email = make_user(cluster, admin_token)
    token = sign_in(cluster.proxy_port, email)
    pids = {n: p.pid for n, p in cluster.processes.items()}
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    written: list[tuple[str, int]] = []  # (value, status) of every write, in order
    stop = threading.Event()

    def load(port: int, writer: bool) -> None:
        n = 0
        with client(port, token, timeout=20) as c:
            while not stop.is_set():
                n += 1
                try:
                    if writer:
                        value = f"w{port}-{n}"
                        r = c.patch("/api/v1/me", json={"first_name": value})
                        written.append((value, r.status_code))
                    else:
                        r = c.get("/api/v1/me")
                except httpx.HTTPError as exc:  # a hang or a dropped connection
                    bad.append(f"{port}: {type(exc).__name__}")
                    continue
                statuses[r.status_code] += 1
                if r.status_code != 200 and (
                    r.status_code != 503 or not r.headers["content-type"].startswith(PROBLEM)
                ):
                    bad.append(f"{port}: {r.status_code} {r.text[:200]}")
                time.sleep(0.02)

    a, _b = cluster.instance_ports
    threads = [
        threading.Thread(target=load, args=(port, writer))
        for port in (*cluster.instance_ports, cluster.proxy_port)
        for writer in (False, True)
        if not (writer and port != a)  # one writer, so that "the last write wins" is defined
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        own_pg.stop("fast")  # in-flight transactions are cut off
        time.sleep(2)  # requests meanwhile find no database
        own_pg.start()
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not bad, bad[:10]
    assert statuses[503] > 0 and statuses[200] > 0, statuses
    assert set(statuses) <= {200, 503}
    _wait_serving(cluster, token)
    assert {n: p.pid for n, p in cluster.processes.items()} == pids  # nothing was restarted
    assert all(p.alive() for p in cluster.processes.values())
    # Nothing committed is lost: the name is the last acknowledged write or a later one
    # whose answer was lost with its connection.
    last_ok = max(i for i, (_, s) in enumerate(written) if s == 200)
    with client(a, token) as c:
        name = c.get("/api/v1/me").json()["first_name"]
    assert name in {v for v, _ in written[last_ok:]}


def test_a_read_only_database_refuses_writes_with_503_and_keeps_reads(
    cluster: Cluster, admin_token: str, own_pg: OwnPostgres
) -> None:
    _, email = make_user(cluster, admin_token)
    token = sign_in(cluster.proxy_port, email)
    own_pg.execute("ALTER SYSTEM SET default_transaction_read_only = on")
    own_pg.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)  # every backend reads the reloaded configuration at its next command
        for port in (*cluster.instance_ports, cluster.proxy_port):
            with client(port, token) as c:
                assert c.get("/api/v1/me").status_code == 200
                assert c.get("/readyz").status_code == 200  # still in the proxy's rotation
                r = c.patch("/api/v1/me", json={"first_name": "nope"})
                assert r.status_code == 503, r.text
                assert r.headers["content-type"].startswith(PROBLEM)
                assert r.json()["code"] == "database_read_only"
                assert r.headers["Retry-After"]
    finally:
        engine = own_pg.engine()
        with engine.connect() as conn:
            conn.exec_driver_sql("SET default_transaction_read_only = off")
            conn.exec_driver_sql("ALTER SYSTEM RESET default_transaction_read_only")
            conn.exec_driver_sql("SELECT pg_reload_conf()")
        engine.dispose()
    time.sleep(0.5)
    with client(cluster.proxy_port, token) as c:
        assert c.patch("/api/v1/me", json={"first_name": "again"}).status_code == 200


def test_mail_waits_in_the_outbox_while_smtp_is_down_and_arrives_once(
    cluster: Cluster, admin_token: str, own_pg: OwnPostgres, own_smtp: OwnSmtp
) -> None:
    emails = [make_user(cluster, admin_token)[1] for _ in range(3)]
    own_smtp.stop()
    try:
        with client(cluster.proxy_port) as c:
            for email in emails:
                r = c.post(
                    "/api/v1/auth/password/forgot",
                    json={"email": email},
                    headers={"X-Forwarded-For": address()},
                )
                assert r.status_code == 202
        deadline = time.monotonic() + 30
        sql = (
            "SELECT attempts, next_attempt_at > now() + interval '20 seconds' FROM outbox "
            "WHERE to_addr IN :to"
        )
        rows: list[tuple[int, bool]] = []
        while time.monotonic() < deadline:
            rows = [tuple(r) for r in own_pg.execute(sql.replace(":to", _in(emails)))]
            if len(rows) == 3 and all(a >= 1 for a, _ in rows):
                break
            time.sleep(0.3)
        assert len(rows) == 3 and all(a >= 1 and later for a, later in rows), rows  # backing off
        assert not any(own_smtp.sink.to(e) for e in emails)
    finally:
        own_smtp.start()
    # The backoff's wait is over (moved, not waited for: 30 s and more in real time).
    own_pg.execute(f"UPDATE outbox SET next_attempt_at = now() WHERE to_addr IN {_in(emails)}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(own_smtp.sink.to(e) for e in emails):
        time.sleep(0.3)
    time.sleep(2)
    assert [len(own_smtp.sink.to(e)) for e in emails] == [1, 1, 1]


def _in(values: list[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


RESOURCES = 100_000
# What a restore must bring back exactly: every row's identity and content (its version and
# updated_at move with the delete and the restore, like any change).
CHECKSUM = (
    "SELECT md5(string_agg(concat_ws('|', id, type, name, attributes::text, parent_id, created_at,"
    " deleted_at, deletion_batch_id), ',' ORDER BY id)) FROM resources WHERE tenant_id = :t"
)


def test_kill_9_during_a_large_tenant_delete_leaves_it_whole_and_the_restore_is_exact(
    cluster: Cluster, admin_token: str, own_pg: OwnPostgres
) -> None:
    a, _b = cluster.instance_ports
    slug = f"big-{secrets.token_hex(3)}"
    with client(a, admin_token) as c:
        assert c.post("/api/v1/tenants", json={"slug": slug, "name": slug}).status_code == 201
    tenant_id = own_pg.execute("SELECT id FROM tenants WHERE slug = :s", s=slug)[0][0]
    rtype = "cluster_item"  # a type without required attributes or parents
    own_pg.execute(
        "INSERT INTO resource_types (key, name, schema, unique_fields, parent_type, cascade_delete, "
        '"references", builtin, version, created_at, updated_at) '
        "VALUES (:k, 'Cluster item', '{}', '[]', NULL, false, '{}', false, 1, now(), now()) "
        "ON CONFLICT DO NOTHING",
        k=rtype,
    )
    own_pg.execute("UPDATE authz_state SET version = version + 1")  # instances re-read the types
    with client(a, admin_token) as c:
        r = c.post(f"/api/v1/tenants/{slug}/resources", json={"type": rtype, "name": "seed"})
        assert r.status_code == 201, r.text
    seed = r.json()["id"]
    columns = [
        row[0]
        for row in own_pg.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'resources' "
            "AND table_schema = 'public' ORDER BY ordinal_position"
        )
    ]
    values = {"id": "gen_random_uuid()", "name": "name || '-' || g"}
    own_pg.execute(
        f"INSERT INTO resources ({', '.join(columns)}) SELECT "
        + ", ".join(values.get(col, col) for col in columns)
        + f" FROM resources, generate_series(1, {RESOURCES - 1}) AS g WHERE id = :seed",
        seed=seed,
    )
    count = (
        "SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FROM resources "
        f"WHERE tenant_id = '{tenant_id}'"
    )
    assert own_pg.execute(count)[0] == (RESOURCES, RESOURCES)
    before = own_pg.execute(CHECKSUM, t=tenant_id)[0][0]

    # Delete on instance a; kill -9 it while PostgreSQL shows the statement running.
    result: list[object] = []

    def delete() -> None:
        try:
            with client(a, admin_token, timeout=60) as c:
                result.append(c.delete(f"/api/v1/tenants/{slug}").status_code)
        except httpx.HTTPError as exc:
            result.append(exc)

    thread = threading.Thread(target=delete)
    thread.start()
    deadline = time.monotonic() + 30
    seen = False
    while time.monotonic() < deadline and not seen:
        seen = bool(
            own_pg.execute(
                "SELECT 1 FROM pg_stat_activity WHERE usename = 'tenantry_app' AND state = 'active' "
                "AND query ILIKE 'UPDATE resources%'"
            )
        )
        if not seen:
            time.sleep(0.005)
    cluster.kill("instance1")
    thread.join(timeout=60)
    try:
        assert seen, "the delete was not seen in progress"
        # The server ends the dead client's transaction (rolled back, unless its commit had
        # already gone through): wait until nothing of it runs any more.
        deadline = time.monotonic() + 30
        while own_pg.execute(
            "SELECT 1 FROM pg_stat_activity WHERE usename = 'tenantry_app' "
            "AND query ILIKE 'UPDATE resources%' AND state <> 'idle'"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        rows = own_pg.execute(count)[0]
        tenant_deleted = own_pg.execute(f"SELECT deleted_at FROM tenants WHERE id = '{tenant_id}'")[0][0]
        if result and result[0] == 200:  # the commit beat the kill: then fully deleted
            assert rows == (0, RESOURCES) and tenant_deleted is not None
        else:  # killed mid-delete (the usual case): untouched, nothing half-deleted
            assert rows == (RESOURCES, RESOURCES) and tenant_deleted is None, (rows, result)
    finally:
        cluster.start_process("instance1")
        cluster.wait_ready(60, ["instance1"])
    if result and result[0] == 200:
        with client(cluster.proxy_port, admin_token, timeout=120) as c:
            assert c.post(f"/api/v1/tenants/{slug}/restore").status_code == 200
        assert own_pg.execute(CHECKSUM, t=tenant_id)[0][0] == before
    # Delete for real (through the other instance), then restore: exactly the rows of before.
    with client(cluster.proxy_port, admin_token, timeout=120) as c:
        assert c.delete(f"/api/v1/tenants/{slug}").status_code == 200
        assert own_pg.execute(count)[0] == (0, RESOURCES)
        assert c.post(f"/api/v1/tenants/{slug}/restore").status_code == 200
    assert own_pg.execute(count)[0] == (RESOURCES, RESOURCES)
    after = own_pg.execute(CHECKSUM, t=tenant_id)[0][0]
    assert after == before
