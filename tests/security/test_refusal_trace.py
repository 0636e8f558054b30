"""Refusals leave a trace (issue 8.5): the engine's 403s as `authz.denied` audit events, 404s that
hide another tenant as warnings on `tenantry.security`, both rate-limited; and the "unenforced
route" alarm only for answers that handed something out.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.api.deps import CtxDep
from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, Resource
from tenantry.errors import NotFound, PermissionDenied
from tenantry.services import audit, roles, sampling
from tenantry.services.context import ServiceContext
from tests.personas import PASSWORD, Personas
from tests.security.helpers import bearer

PER_KEY = audit.TRACES_PER_KEY_PER_MINUTE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    c = FakeClock()
    audit.set_sampler("denied", sampling.MemorySampler(PER_KEY, audit.TRACES_PER_MINUTE, clock=c))
    audit.set_sampler("hidden", sampling.MemorySampler(PER_KEY, audit.TRACES_PER_MINUTE, clock=c))
    return c


@pytest.fixture
def security_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """`tenantry` does not propagate to the root logger: make caplog listen on `tenantry.security`."""
    logger = logging.getLogger("tenantry.security")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="tenantry.security")
    yield caplog
    logger.removeHandler(caplog.handler)


def denials(db: Database) -> list[AuditEvent]:
    with db.sessions() as s:
        return list(
            s.scalars(select(AuditEvent).where(AuditEvent.action == "authz.denied").order_by(AuditEvent.id))
        )


def hidden_warnings(caplog: pytest.LogCaptureFixture) -> list[dict]:
    # pytest 9 may also attach caplog's handler to `tenantry` itself: count each record once.
    records = {id(r): r for r in caplog.records}.values()
    return [
        r.fields  # type: ignore[attr-defined]
        for r in records
        if r.name == "tenantry.security" and r.getMessage() == "cross-tenant lookup"
    ]


def acme_host(db: Database, personas: Personas) -> uuid.UUID:
    with db.unit_of_work() as s, scoping.in_tenant(s, personas.acme.id):
        r = Resource(tenant_id=personas.acme.id, type="host", name="web-1")
        s.add(r)
        s.flush()
        return r.id


# --- the engine's refusals become audit events ---------------------------------------------------


def test_engine_refusal_writes_a_denied_event(api, personas: Personas, clean_db: Database) -> None:
    r = api("acme_member").post(
        "/api/v1/tenants/acme/members",
        json={"email": "someone@example.com", "role": "viewer"},
        headers={"X-Request-ID": "req-denied-1", "User-Agent": "probe/1.0"},
    )
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "permission_denied"
    [event] = denials(clean_db)
    member = personas.users["acme_member"]
    assert (event.actor_type, event.actor_id, event.actor_label) == ("user", member.id, member.email)
    assert event.tenant_id == personas.acme.id
    assert event.after == {"permission": "member.manage", "reason": "permission_denied", "suppressed": 0}
    assert (event.ip, event.user_agent, event.request_id) == ("testclient", "probe/1.0", "req-denied-1")
    assert (event.target_type, event.target_id) == ("", None)


def test_denial_on_a_resource_names_it_as_target(api, personas: Personas, clean_db: Database) -> None:
    rid = acme_host(clean_db, personas)
    r = api("acme_viewer").patch(f"/api/v1/tenants/acme/resources/{rid}", json={"name": "renamed"})
    assert r.status_code == 403, r.text
    [event] = denials(clean_db)
    assert (event.target_type, event.target_id) == ("resource", str(rid))
    assert event.after["permission"] == "host.update"
    with clean_db.sessions() as s, scoping.in_tenant(s, personas.acme.id):
        assert s.get(Resource, (personas.acme.id, rid)).name == "web-1"


def test_escalation_refusal_names_the_missing_permissions(
    api, personas: Personas, clean_db: Database
) -> None:
    """`require_held`: a tenant admin may not hand out a role holding what it lacks itself."""
    with clean_db.unit_of_work() as s:
        roles.create_role(
            ServiceContext(session=s, principal=system_principal("tests")),
            key="global_power",
            name="Global power",
            permissions=["user.manage", "user.read"],
            acknowledge_risk=True,
        )
    victim = personas.users["acme_viewer"]
    r = api("acme_admin").patch(f"/api/v1/tenants/acme/members/{victim.id}", json={"role": "global_power"})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "escalation_denied"
    [event] = denials(clean_db)
    assert event.after == {
        "permissions": ["user.manage", "user.read"],
        "reason": "escalation_denied",
        "suppressed": 0,
    }
    assert event.tenant_id == personas.acme.id
    assert event.actor_id == personas.users["acme_admin"].id
    assert api("acme_admin").get(f"/api/v1/tenants/acme/members/{victim.id}").json()["roles"] == ["viewer"]


def test_api_key_refusal_is_recorded_as_the_key(api, personas: Personas, clean_db: Database) -> None:
    created = api("acme_member").post("/api/v1/me/api-keys", json={"name": "ci", "scope": "read_write"})
    assert created.status_code == 201, created.text
    key_token, key_id = created.json()["token"], created.json()["id"]
    r = api(None).get("/api/v1/tenants/acme/audit", headers=bearer(key_token))
    assert r.status_code == 403, r.text
    [event] = denials(clean_db)
    assert (event.actor_type, str(event.actor_id)) == ("api_key", key_id)
    assert event.after["permission"] == "audit.read"
    assert key_token not in json.dumps(audit.as_dict(event))


def test_no_secret_reaches_the_event(api, personas: Personas, clean_db: Database) -> None:
    token = personas.tokens["acme_member"]
    r = api("acme_member").post(
        "/api/v1/tenants/acme/members",
        json={"email": "x@example.com", "role": "viewer", "password": "hunter2-secret-value"},
    )
    assert r.status_code in (403, 422)
    r = api("acme_member").delete(f"/api/v1/tenants/acme/members/{personas.users['acme_viewer'].id}")
    assert r.status_code == 403, r.text
    stored = json.dumps([audit.as_dict(e) for e in denials(clean_db)])
    assert denials(clean_db)
    assert token not in stored and PASSWORD not in stored and "hunter2" not in stored


def test_a_global_scope_refusal_inside_a_tenant_is_that_tenants_event(
    api, personas: Personas, clean_db: Database
) -> None:
    """Denials are readable: tenant admins see those in their tenant, superadmins all of them."""
    assert api("acme_member").get("/api/v1/tenants/acme/audit").status_code == 403
    assert api("globex_member").get("/api/v1/users").status_code == 403

    def actions(persona: str, path: str) -> list[tuple[str, str | None]]:
        r = api(persona).get(path, params={"action": "authz.denied"})
        assert r.status_code == 200, r.text
        return [(e["actor"]["label"], e["tenant_id"]) for e in r.json()["items"]]

    acme, member = str(personas.acme.id), personas.users["acme_member"].email
    assert actions("acme_admin", "/api/v1/tenants/acme/audit") == [(member, acme)]
    assert actions("globex_admin", "/api/v1/tenants/globex/audit") == []
    everything = actions("superadmin", "/api/v1/audit")
    assert (member, acme) in everything
    assert (personas.users["globex_member"].email, None) in everything


def test_refusals_that_are_not_engine_decisions_leave_no_event(
    api, client: TestClient, personas: Personas, clean_db: Database
) -> None:
    """CSRF failures are about the request's origin, not about what the caller may do."""
    api(None)  # no bearer token: the cookie session is what signs the requests in
    login = client.post(
        "/api/v1/auth/session", json={"email": personas.users["acme_member"].email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    r = client.post("/api/v1/tenants/acme/resources", json={"type": "host", "name": "x", "attributes": {}})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "csrf_failed"
    assert denials(clean_db) == []


def test_a_failing_trace_never_changes_the_answer(
    api, personas: Personas, clean_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(audit, "record", broken)
    r = api("acme_member").get("/api/v1/tenants/acme/audit")
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"


# --- rate limits ----------------------------------------------------------------------------------


def test_a_scanner_leaves_a_handful_of_events_and_a_count(
    api, personas: Personas, clean_db: Database, clock: FakeClock
) -> None:
    for _ in range(100):
        assert api("acme_member").get("/api/v1/tenants/acme/audit").status_code == 403
    assert len(denials(clean_db)) == PER_KEY
    clock.now += 60  # a minute later the budget is back, and the next event tells what was held back
    assert api("acme_member").get("/api/v1/tenants/acme/audit").status_code == 403
    events = denials(clean_db)
    assert len(events) == PER_KEY + 1
    assert events[-1].after["suppressed"] == 100 - PER_KEY
    # Another permission is another key: its first refusal is written at once.
    assert api("acme_member").get("/api/v1/tenants/acme/trash").status_code == 403
    assert denials(clean_db)[-1].after == {
        "permission": "trash.read",
        "reason": "permission_denied",
        "suppressed": 0,
    }


def test_the_overall_cap_holds_across_keys() -> None:
    clock = FakeClock()
    sampler = sampling.MemorySampler(per_key=3, overall=10, clock=clock)
    admitted = [sampler.admit(f"actor-{i}") for i in range(25)]
    assert sum(a is not None for a in admitted) == 10
    clock.now += 60
    assert sampler.admit("actor-20") == 1  # held back once by the overall cap


def test_idle_keys_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "_MAX_KEYS", 10)
    clock = FakeClock()
    sampler = sampling.MemorySampler(per_key=1, overall=1000, clock=clock)
    for i in range(50):
        sampler.admit(f"k{i}")
        clock.now += 61
    assert len(sampler._buckets) <= 12


def test_budgets_are_shared_through_redis() -> None:
    url = os.environ.get("TENANTRY_TEST_REDIS_URL")
    if not url:
        pytest.skip("TENANTRY_TEST_REDIS_URL is not set")
    prefix = f"tenantry:test-trace:{uuid.uuid4().hex}"
    clock = FakeClock()
    one = sampling.RedisSampler(url, 3, 100, prefix=prefix, clock=clock)
    two = sampling.RedisSampler(url, 3, 100, prefix=prefix, clock=clock)  # another instance
    try:
        results = [s.admit("actor|perm|tenant") for s in (one, two, one, two, one, two)]
        assert results == [0, 0, 0, None, None, None]
        clock.now += 60
        assert one.admit("actor|perm|tenant") == 3  # counted by both instances
        assert two.admit("actor|perm|tenant") == 0
    finally:
        for k in one.r.scan_iter(f"{prefix}:*"):
            one.r.delete(k)
        one.r.close()
        two.r.close()


def test_an_unreachable_redis_falls_back_to_this_process() -> None:
    sampler = sampling.RedisSampler("redis://127.0.0.1:1/0", 2, 100)
    assert [sampler.admit("k") for _ in range(4)] == [0, 0, None, None]


def test_denials_go_through_redis_when_configured(
    app: FastAPI, api, personas: Personas, clean_db: Database
) -> None:
    url = os.environ.get("TENANTRY_TEST_REDIS_URL")
    if not url:
        pytest.skip("TENANTRY_TEST_REDIS_URL is not set")
    app.state.db.settings.redis_url = url
    try:
        api("acme_member").get("/api/v1/tenants/acme/audit")
        assert isinstance(audit._samplers["denied"], sampling.RedisSampler)
        assert len(denials(clean_db)) == 1
    finally:
        app.state.db.settings.redis_url = None


# --- cross-tenant 404s ------------------------------------------------------------------------------


def test_cross_tenant_404_is_a_structured_warning(
    api, personas: Personas, security_log: pytest.LogCaptureFixture
) -> None:
    r = api("acme_member").get("/api/v1/tenants/globex/members", headers={"X-Request-ID": "req-probe-1"})
    assert r.status_code == 404
    [fields] = hidden_warnings(security_log)
    assert fields == {
        "actor": f"user:{personas.users['acme_member'].id}",
        "actor_label": personas.users["acme_member"].email,
        "kind": "tenant",
        "requested": "globex",
        "path": "/api/v1/tenants/globex/members",
        "request_id": "req-probe-1",
        "ip": "testclient",
        "suppressed": 0,
    }
    # A hidden object is a 404, never an audit event (the table is for the engine's decisions).
    assert api("superadmin").get("/api/v1/audit", params={"action": "authz.denied"}).json()["items"] == []


def test_unknown_and_visible_tenants_are_not_warned_about(
    api, personas: Personas, security_log: pytest.LogCaptureFixture
) -> None:
    assert api("acme_member").get("/api/v1/tenants/no-such-tenant").status_code == 404
    assert api("acme_member").get(f"/api/v1/tenants/{uuid.uuid4()}/members").status_code == 404
    assert api("acme_member").get("/api/v1/tenants/acme").status_code == 200
    assert hidden_warnings(security_log) == []


def test_cross_tenant_warnings_are_rate_limited(
    api, personas: Personas, security_log: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    for _ in range(50):
        assert api("acme_member").get(f"/api/v1/tenants/{personas.globex.id}").status_code == 404
    assert len(hidden_warnings(security_log)) == PER_KEY
    clock.now += 60
    assert api("acme_member").get("/api/v1/tenants/globex").status_code == 404
    assert hidden_warnings(security_log)[-1]["suppressed"] == 50 - PER_KEY


# --- the unenforced-route alarm ---------------------------------------------------------------------


def test_unenforced_alarm_ignores_refusals_but_not_redirects(
    app: FastAPI, client: TestClient, personas: Personas
) -> None:
    @app.get("/api/v1/_probe_missing")
    def missing(ctx: CtxDep) -> None:
        raise NotFound("probe")

    @app.get("/api/v1/_probe_refused")
    def refused(ctx: CtxDep) -> None:
        raise PermissionDenied("not you")

    @app.get("/api/v1/_probe_redirect")
    def redirect(ctx: CtxDep) -> RedirectResponse:
        return RedirectResponse("/api/v1/me", status_code=303)

    headers = bearer(personas.tokens["acme_member"])
    assert client.get("/api/v1/_probe_missing", headers=headers).status_code == 404
    assert client.get("/api/v1/_probe_refused", headers=headers).status_code == 403
    assert app.state.unenforced == []  # refusals hand nothing out
    r = client.get("/api/v1/_probe_redirect", headers=headers, follow_redirects=False)
    assert r.status_code == 303
    assert app.state.unenforced == [("GET", "/api/v1/_probe_redirect")]
