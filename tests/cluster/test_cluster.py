"""Two instances, a worker and HAProxy on one PostgreSQL and one Redis (issue 13, item 2).

Each rule is checked across instances: a change made through one is in force on the other on
its very next request, whatever either had cached.
"""

from __future__ import annotations

import itertools
import secrets
import time

import pytest
from deploy.cluster import Cluster

from tests.cluster.conftest import OwnPostgres, OwnRedis, OwnSmtp, client, needs_tools

pytestmark = [pytest.mark.cluster, needs_tools]

PASSWORD = "a-long-cluster-passphrase-42"
_addresses = itertools.count(1)


def address() -> str:
    """A client address of its own per caller (the per-address limiter counts per address)."""
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"


def make_user(cluster: Cluster, admin_token: str, *, role: str | None = None) -> tuple[str, str]:
    email = f"u-{secrets.token_hex(4)}@cluster.example.com"
    with client(cluster.proxy_port, admin_token) as c:
        r = c.post("/api/v1/users", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        if role:
            r = c.post("/api/v1/tenants/default/members", json={"user_id": uid, "role": role})
            assert r.status_code in (200, 201), r.text
    return uid, email


AUDIT_PATH = "/api/v1/tenants/default/grants"  # needs grant:read: the auditor role, not the viewer


def grant_auditor(cluster: Cluster, admin_token: str, uid: str) -> str:
    with client(cluster.proxy_port, admin_token) as c:
        body = {"principal": {"type": "user", "id": uid}, "role": "auditor"}
        r = c.post("/api/v1/tenants/default/grants", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def revoke(port: int, admin_token: str, grant: str) -> None:
    with client(port, admin_token) as c:
        assert c.delete(f"/api/v1/tenants/default/grants/{grant}").status_code == 204


def sign_in(port: int, email: str, password: str = PASSWORD) -> str:
    with client(port) as c:
        r = c.post(
            "/api/v1/auth/login",
            json={"email": email, "password": password},
            headers={"X-Forwarded-For": address()},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def status(port: int, path: str, token: str) -> int:
    with client(port, token) as c:
        return c.get(path).status_code


def test_the_proxy_spreads_requests_over_both_instances(cluster: Cluster) -> None:
    a, b = cluster.instance_ports
    assert {cluster.proxy_port, a, b} and a != b
    with client(cluster.proxy_port) as c:
        assert all(c.get("/readyz").status_code == 200 for _ in range(4))
    # Each instance answers on its own port too: the tests below use both directly.
    for port in (a, b):
        with client(port) as c:
            assert c.get("/readyz").json() == {"status": "ready"}


def test_a_session_revoked_on_one_instance_is_refused_by_the_other(
    cluster: Cluster, admin_token: str
) -> None:
    a, b = cluster.instance_ports
    _, email = make_user(cluster, admin_token)
    token = sign_in(a, email)
    assert status(b, "/api/v1/me", token) == 200  # b has seen (and may cache) the session
    with client(a, token) as c:
        assert c.post("/api/v1/auth/logout").status_code == 204
    assert status(b, "/api/v1/me", token) == 401
    assert status(cluster.proxy_port, "/api/v1/me", token) == 401


def test_a_grant_removed_on_one_instance_is_denied_on_the_other(cluster: Cluster, admin_token: str) -> None:
    a, b = cluster.instance_ports
    uid, email = make_user(cluster, admin_token, role="viewer")
    grant = grant_auditor(cluster, admin_token, uid)
    token = sign_in(b, email)
    assert status(b, AUDIT_PATH, token) == 200  # b's permission cache now holds the grant
    revoke(a, admin_token, grant)
    assert status(b, AUDIT_PATH, token) == 403
    assert status(cluster.proxy_port, AUDIT_PATH, token) == 403


def _fail(port: int, email: str, source: str) -> int:
    with client(port) as c:
        r = c.post(
            "/api/v1/auth/login",
            json={"email": email, "password": "wrong-" + secrets.token_hex(4)},
            headers={"X-Forwarded-For": source},
        )
        assert r.status_code in (401, 429), r.text
        return r.status_code


def test_login_failures_on_both_instances_count_toward_one_lock_out(
    cluster: Cluster, admin_token: str
) -> None:
    a, b = cluster.instance_ports
    _, email = make_user(cluster, admin_token)
    lock_after = int(cluster.env["TENANTRY_LOGIN_LOCK_AFTER"])
    for i in range(lock_after):
        assert _fail((a, b)[i % 2], email, address()) == 401
    for port in (a, b):
        with client(port) as c:
            r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 429 and r.json()["code"] == "account_locked", r.text


def _address_limit_is_shared(cluster: Cluster) -> None:
    """The per-address window is one across instances (Redis): half on each fills it."""
    a, b = cluster.instance_ports
    source = address()
    limit = int(cluster.env["TENANTRY_LOGIN_IP_MAX_FAILURES"])
    for i in range(limit):
        assert _fail((a, b)[i % 2], f"nobody-{i}@cluster.example.com", source) == 401
    assert _fail(a, "nobody-x@cluster.example.com", source) == 429
    assert _fail(b, "nobody-y@cluster.example.com", source) == 429


def test_failures_from_one_address_on_both_instances_share_one_window(cluster: Cluster) -> None:
    _address_limit_is_shared(cluster)


def test_with_redis_stopped_everything_works_and_recovers_when_it_returns(
    cluster: Cluster, admin_token: str, own_redis: OwnRedis
) -> None:
    a, b = cluster.instance_ports
    uid, email = make_user(cluster, admin_token, role="viewer")
    grant = grant_auditor(cluster, admin_token, uid)
    own_redis.stop()
    try:
        token = sign_in(a, email)  # sign-in works without Redis
        assert status(b, AUDIT_PATH, token) == 200
        # Login failures: per-instance limits instead of errors.
        source = address()
        assert {_fail(port, "nobody@cluster.example.com", source) for port in (a, b)} == {401}
        # Grant changes: the database version check clears b's cache without Redis.
        revoke(a, admin_token, grant)
        assert status(b, AUDIT_PATH, token) == 403
        with client(b, token) as c:
            assert c.post("/api/v1/auth/logout").status_code == 204
        assert status(a, "/api/v1/me", token) == 401
    finally:
        own_redis.start()
    # Redis is back: the shared window works again (the limiter tries Redis on every call).
    _address_limit_is_shared(cluster)


def _owner(pg: OwnPostgres, sql: str, **params: object) -> list[tuple[object, ...]]:
    return list(pg.execute(sql, **params))


def test_outbox_mail_and_purge_batches_are_handled_exactly_once(
    cluster: Cluster, admin_token: str, own_pg: OwnPostgres, own_smtp: OwnSmtp
) -> None:
    """Both instances and the worker run the jobs; each mail arrives once, each batch is purged once."""
    emails = [make_user(cluster, admin_token)[1] for _ in range(12)]
    with client(cluster.proxy_port) as c:
        for email in emails:
            r = c.post(
                "/api/v1/auth/password/forgot", json={"email": email}, headers={"X-Forwarded-For": address()}
            )
            assert r.status_code == 202, r.text
    # Trash: tenants deleted now, then aged past the retention period so that every runner is due.
    slugs = [f"purge-{secrets.token_hex(3)}" for _ in range(4)]
    with client(cluster.proxy_port, admin_token) as c:
        for slug in slugs:
            assert c.post("/api/v1/tenants", json={"slug": slug, "name": slug}).status_code == 201
            assert c.delete(f"/api/v1/tenants/{slug}").status_code == 200
    _owner(
        own_pg,
        "UPDATE deletion_batches SET purge_after = now() - interval '1 day' "
        "WHERE root_type = 'tenant' AND root_name LIKE 'purge-%' AND purged_at IS NULL",
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        delivered = all(own_smtp.sink.to(e) for e in emails)
        pending = _owner(
            own_pg,
            "SELECT count(*) FROM deletion_batches WHERE root_name LIKE 'purge-%' AND purged_at IS NULL",
        )[0][0]
        if delivered and pending == 0:
            break
        time.sleep(0.3)
    time.sleep(3)  # a late duplicate would arrive now
    assert [len(own_smtp.sink.to(e)) for e in emails] == [1] * len(emails)
    purges = _owner(
        own_pg,
        "SELECT count(*) FROM audit_events WHERE action = 'tenant.purge' AND target_id IN "
        "(SELECT root_id::text FROM deletion_batches WHERE root_name LIKE 'purge-%')",
    )[0][0]
    assert purges == len(slugs)
